# Usage: python3 table_forms.py IN.onnx pertensor|percol|perrow|gbq OUT.onnx [BLOCK]
# Rewrites every Gather of a rank-2 float table into one int8 storage form (for comparing forms).
import onnx, numpy as np, sys
from onnx import helper, numpy_helper as nh, TensorProto
src=sys.argv[1]; mode=sys.argv[2]; out=sys.argv[3]
m=onnx.load(src)
g=m.graph
init={i.name:i for i in g.initializer}
new_nodes=[]
def add_init(name,arr): g.initializer.append(nh.from_array(arr,name))
for n in list(g.node):
    if n.op_type=='Gather' and n.input[0] in init and len(init[n.input[0]].dims)==2:
        W=nh.to_array(init[n.input[0]]); y=n.output[0]; base=n.input[0]
        if mode=='pertensor':
            s=np.abs(W).max()/127; q=np.clip(np.round(W/s),-127,127).astype(np.int8)
            add_init(base+'_q',q); add_init(base+'_s',np.array(s,np.float32)); add_init(base+'_z',np.array(0,np.int8))
            n.input[0]=base+'_q'; n.output[0]=y+'_q'
            new_nodes.append((n,[helper.make_node('DequantizeLinear',[y+'_q',base+'_s',base+'_z'],[y])]))
        elif mode=='percol':
            s=(np.abs(W).max(0)/127).astype(np.float32); q=np.clip(np.round(W/s),-127,127).astype(np.int8)
            add_init(base+'_q',q); add_init(base+'_s',s); add_init(base+'_z',np.zeros(len(s),np.int8))
            n.input[0]=base+'_q'; n.output[0]=y+'_q'
            new_nodes.append((n,[helper.make_node('DequantizeLinear',[y+'_q',base+'_s',base+'_z'],[y],axis=-1)]))
        elif mode=='perrow':
            s=(np.abs(W).max(1,keepdims=True)/127).astype(np.float32); s[s==0]=1; q=np.clip(np.round(W/s),-127,127).astype(np.int8)
            add_init(base+'_q',q); add_init(base+'_s',s)
            n.input[0]=base+'_q'; n.output[0]=y+'_q'
            idx=n.input[1]
            new_nodes.append((n,[helper.make_node('Gather',[base+'_s',idx],[y+'_s']),
                helper.make_node('Cast',[y+'_q'],[y+'_f'],to=TensorProto.FLOAT),
                helper.make_node('Mul',[y+'_f',y+'_s'],[y])]))
        elif mode=='gbq':
            # com.microsoft GatherBlockQuantized: uint8 data, block along axis 1
            bs=int(sys.argv[4]) if len(sys.argv)>4 else 32
            V,H=W.shape; Wb=W.reshape(V,H//bs,bs)
            s=(np.abs(Wb).max(2)/127).astype(np.float32); s[s==0]=1
            q=(np.clip(np.round(Wb/s[:,:,None]),-127,127)+128).astype(np.uint8).reshape(V,H)
            add_init(base+'_q',q); add_init(base+'_s',s); add_init(base+'_z',np.full((V,H//bs),128,np.uint8))
            n.input[0]=base+'_q'; n.output[0]=y+'_q'
            new_nodes.append((n,[helper.make_node('GatherBlockQuantized',[base+'_q',n.input[1],base+'_s',base+'_z'],[y],domain='com.microsoft',gather_axis=0,quantize_axis=1,block_size=bs,bits=8)]))
        g.initializer.remove(init[n.input[0].replace('_q','')] if False else init[base])
for n,nn in new_nodes:
    if mode=='gbq':
        i=list(g.node).index(n); g.node.remove(n)
        for k,x in enumerate(nn): g.node.insert(i+k,x)
    else:
        i=list(g.node).index(n)
        for k,x in enumerate(nn): g.node.insert(i+1+k,x)
if mode=='gbq' and not any(o.domain=='com.microsoft' for o in m.opset_import):
    m.opset_import.append(helper.make_opsetid('com.microsoft',1))
onnx.save(m,out)
