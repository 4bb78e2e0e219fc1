# Usage: FLOAT_MODEL=f.onnx CALIB_TEXT=s.txt TOKENIZER=t.json python3 attention_qdq.py IN.onnx OUT.onnx qk|av|both
# Q/DQ (u8, per-tensor, min-max on CALIB_TEXT) on the inputs of the activation x activation MatMuls; prints ORT's optimized op counts.
import onnx, numpy as np, sys, onnxruntime as ort
from onnx import helper, numpy_helper as nh
import os; sys.path.insert(0,os.path.dirname(__file__)); from minilm_cosine import encode, feed
src=sys.argv[1]; out=sys.argv[2]; floatp=os.environ['FLOAT_MODEL']; calibtxt=os.environ['CALIB_TEXT']
which=sys.argv[3] if len(sys.argv)>3 else 'both'   # qk, av, both
m=onnx.load(src); g=m.graph
init={i.name for i in g.initializer}
prod={o:n for n in g.node for o in n.output}
mms=[n for n in g.node if n.op_type=='MatMul' and all(i not in init and (i not in prod or prod[i].op_type!='DequantizeLinear') for i in n.input)]
mms=[n for n in mms if (which=='both') or (which=='qk' and n.name.endswith('/MatMul')) or (which=='av' and n.name.endswith('MatMul_1'))]
tens=sorted({i for n in mms for i in n.input})
fm=onnx.load(floatp); vi=[helper.make_tensor_value_info(t,onnx.TensorProto.FLOAT,None) for t in tens]
fm.graph.output.extend(vi)
s=ort.InferenceSession(fm.SerializeToString(),providers=['CPUExecutionProvider'])
lo={t:0.0 for t in tens};hi={t:0.0 for t in tens}
for line in open(calibtxt):
    r=s.run(tens,feed(encode(line.strip())))
    for t,v in zip(tens,r): lo[t]=min(lo[t],float(v.min()));hi[t]=max(hi[t],float(v.max()))
done={}
for n in mms:
    for k,t in enumerate(list(n.input)):
        if t not in done:
            a,b=min(lo[t],0),max(hi[t],0); sc=(b-a)/255 or 1; zp=int(np.clip(round(-a/sc),0,255))
            g.initializer.extend([nh.from_array(np.array(sc,np.float32),t+'_as'),nh.from_array(np.array(zp,np.uint8),t+'_az')])
            q=helper.make_node('QuantizeLinear',[t,t+'_as',t+'_az'],[t+'_aq']); dq=helper.make_node('DequantizeLinear',[t+'_aq',t+'_as',t+'_az'],[t+'_adq'])
            i=list(g.node).index(prod[t]); g.node.insert(i+1,q); g.node.insert(i+2,dq); done[t]=t+'_adq'
        n.input[k]=done[t]
onnx.save(m,out); print(len(mms),'matmuls')
o=ort.SessionOptions(); o.optimized_model_filepath=out+'.opt.onnx'; o.intra_op_num_threads=1
ort.InferenceSession(out,o,providers=['CPUExecutionProvider'])
om=onnx.load(out+'.opt.onnx'); from collections import Counter
print(Counter(n.op_type for n in om.graph.node))
