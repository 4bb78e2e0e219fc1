# Usage: python3 matmul_1t.py
# One activation x activation MatMul, float vs Q/DQ on both inputs, per-run thread CPU time at one thread.
import numpy as np, onnxruntime as ort, time, onnx
from onnx import helper, TensorProto, numpy_helper as nh
def model(q,h,M,K,N):
    X=helper.make_tensor_value_info('x',TensorProto.FLOAT,[1,h,M,K]);Y=helper.make_tensor_value_info('y',TensorProto.FLOAT,[1,h,K,N])
    Z=helper.make_tensor_value_info('z',TensorProto.FLOAT,[1,h,M,N])
    inits=[];nodes=[]
    a,b='x','y'
    # a float op before, so the Q has a producer as in a real graph
    nodes+= [helper.make_node('Relu',['x'],['xr']),helper.make_node('Relu',['y'],['yr'])]; a,b='xr','yr'
    if q:
        inits=[nh.from_array(np.array(0.02,np.float32),'s'),nh.from_array(np.array(0,np.uint8),'zp'),nh.from_array(np.array(128,np.uint8),'zp2')]
        nodes+=[helper.make_node('QuantizeLinear',[a,'s','zp'],['aq']),helper.make_node('DequantizeLinear',['aq','s','zp'],['ad']),
                helper.make_node('QuantizeLinear',[b,'s','zp2'],['bq']),helper.make_node('DequantizeLinear',['bq','s','zp2'],['bd'])]
        a,b='ad','bd'
    nodes.append(helper.make_node('MatMul',[a,b],['z']))
    m=helper.make_model(helper.make_graph(nodes,'g',[X,Y],[Z],inits),opset_imports=[helper.make_opsetid('',13)],ir_version=8)
    return m.SerializeToString()
def t(m,f,runs=40):
    o=ort.SessionOptions();o.intra_op_num_threads=1;s=ort.InferenceSession(m,o,providers=['CPUExecutionProvider'])
    for _ in range(3): s.run(None,f)
    ts=[]
    for _ in range(runs):
        a=time.thread_time();s.run(None,f);ts.append(time.thread_time()-a)
    return np.median(ts)
for h,M,K,N in [(12,128,32,128),(12,128,128,32),(12,32,32,32),(12,256,64,256),(12,256,256,64),(12,512,64,512),(12,512,512,64),(1,512,512,512),(1,128,384,384),(16,1024,64,1024),(16,1024,1024,64)]:
    f={'x':np.random.rand(1,h,M,K).astype(np.float32),'y':np.random.rand(1,h,K,N).astype(np.float32)}
    tf=t(model(0,h,M,K,N),f);tq=t(model(1,h,M,K,N),f)
    print(f'h{h} M{M} K{K} N{N}: float {tf*1e3:.3f} ms  qdq {tq*1e3:.3f} ms  ratio {tq/tf:.2f}')
