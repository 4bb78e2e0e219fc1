# Usage: LENS=128,32 python3 latency_1t.py A.onnx B.onnx ... RUNS
# Median and min per-run CPU time of the calling thread (one intra-op thread), models interleaved.
import sys, time, numpy as np, onnxruntime as ort
def sess(p):
    o=ort.SessionOptions();o.intra_op_num_threads=1;o.inter_op_num_threads=1
    return ort.InferenceSession(p,o,providers=['CPUExecutionProvider'])
ps=sys.argv[1:-1]; runs=int(sys.argv[-1])
ss=[sess(p) for p in ps]
for L in [int(x) for x in __import__("os").environ.get("LENS","128,32").split(",")]:
    ids=np.array([[101]+[2000+i%500 for i in range(L-2)]+[102]],dtype=np.int64)
    f={'input_ids':ids,'attention_mask':np.ones_like(ids),'token_type_ids':np.zeros_like(ids)}
    ts=[[] for _ in ss]
    for s in ss:
        for _ in range(3): s.run(None,f)
    for r in range(runs):
        for k,s in enumerate(ss):
            a=time.thread_time();s.run(None,f);ts[k].append(time.thread_time()-a)
    print(f'seq {L}: '+'  '.join(f'{p.split("/")[-1]} {np.median(t)*1e3:.2f}ms(min {np.min(t)*1e3:.2f})' for p,t in zip(ps,ts)))
