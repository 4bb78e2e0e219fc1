# Usage: TOKENIZER=tokenizer.json python3 minilm_cosine.py FLOAT.onnx INT8.onnx SENTENCES.txt [RUNS]
# Held-out sentence-embedding cosine (mean-pooled) and 1-thread latency, float vs int8 (tool only).
import json, sys, time, unicodedata, numpy as np, onnxruntime as ort
import os
TOK=os.environ.get('TOKENIZER','all-minilm-l6-v2-tokenizer.json')
t=json.load(open(TOK)); vocab=t['model']['vocab']
def is_punct(c):
    cp=ord(c)
    if 33<=cp<=47 or 58<=cp<=64 or 91<=cp<=96 or 123<=cp<=126: return True
    return unicodedata.category(c).startswith('P')
def basic(text):
    text=''.join(' ' if c.isspace() else c for c in text if not (ord(c)==0 or ord(c)==0xfffd or unicodedata.category(c) in ('Cc','Cf') and not c.isspace()))
    text=text.lower()
    text=''.join(c for c in unicodedata.normalize('NFD',text) if unicodedata.category(c)!='Mn')
    out=[]
    for w in text.split():
        cur=''
        for c in w:
            if is_punct(c):
                if cur: out.append(cur); cur=''
                out.append(c)
            else: cur+=c
        if cur: out.append(cur)
    return out
def wordpiece(w):
    if len(w)>100: return ['[UNK]']
    out=[];s=0
    while s<len(w):
        e=len(w);sub=None
        while s<e:
            p=w[s:e]
            if s>0: p='##'+p
            if p in vocab: sub=p;break
            e-=1
        if sub is None: return ['[UNK]']
        out.append(sub);s=e
    return out
def encode(s,maxlen=128):
    toks=[p for w in basic(s) for p in wordpiece(w)][:maxlen-2]
    ids=[vocab['[CLS]']]+[vocab[x] for x in toks]+[vocab['[SEP]']]
    return np.array([ids],dtype=np.int64)
def sess(p,threads=1):
    o=ort.SessionOptions();o.intra_op_num_threads=threads;o.inter_op_num_threads=1
    return ort.InferenceSession(p,o,providers=['CPUExecutionProvider'])
def feed(ids):
    return {'input_ids':ids,'attention_mask':np.ones_like(ids),'token_type_ids':np.zeros_like(ids)}
def emb(s,ids):
    h=s.run(None,feed(ids))[0]; return h[0].mean(0)
def lat(s,ids,runs):
    for _ in range(3): s.run(None,feed(ids))
    ts=[]
    for _ in range(runs):
        a=time.thread_time();s.run(None,feed(ids));ts.append(time.thread_time()-a)
    return float(np.median(ts))*1e3
if __name__=='__main__':
    fp,qp=sys.argv[1],sys.argv[2]; held=sys.argv[3]
    runs=int(sys.argv[4]) if len(sys.argv)>4 else 20
    sents=[l.strip() for l in open(held) if l.strip()]
    f=sess(fp);q=sess(qp)
    cos=[]
    for s in sents:
        ids=encode(s);a=emb(f,ids);b=emb(q,ids)
        cos.append(float(a@b/np.linalg.norm(a)/np.linalg.norm(b)))
    import os
    print(f'held-out sentences {len(sents)}: mean cosine {np.mean(cos):.5f} min {np.min(cos):.5f}')
    print(f'size float {os.path.getsize(fp)/1e6:.1f} MB int8 {os.path.getsize(qp)/1e6:.1f} MB ratio {os.path.getsize(qp)/os.path.getsize(fp):.3f}')
    if runs>0:
        for L in (128,32):
            ids=np.array([[101]+[2000+i%500 for i in range(L-2)]+[102]],dtype=np.int64)
            lf=lat(f,ids,runs);lq=lat(q,ids,runs)
            print(f'seq {L}: float {lf:.2f} ms int8 {lq:.2f} ms ratio {lq/lf:.3f}')
