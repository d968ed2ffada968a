"""Probe: is there a reason signal in the cry detector's learned representation, or in simple clip statistics,
that survives grouped CV once accuracy >= 0.75 is required?

Features per Donate-a-Cry clip: (a) 64 log-mel means/stds + 20 MFCC means/stds (the report's logistic-regression
baseline), (b) the time-averaged LSTM output of the cry detector of the same CV fold (`runs/cry_cv/fold<k>.pt`,
trained without fold k), (c) both. Logistic regression (class_weight balanced) at C in {0.01, 0.1, 1}; then the
same logit adjustment as the CRNN (tau * log prior, tau picked on the other three folds for macro-F1 at
accuracy >= 0.75). Prints fold means. Not part of --all (a probe; its result is quoted in REPORT.md).

    python3 training/probe_reason_embeddings.py
"""
import sys, json, numpy as np, torch
sys.path.insert(0, str(__import__('pathlib').Path(__file__).resolve().parent))
import train as T, metrics as M
from pathlib import Path
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
D=T.Data(Path(__file__).resolve().parent.parent.parent / 'shared' / 'data')
rows=[r for r in D.rows if r['source']=='donateacry']
y=np.array([T.REASONS.index(r['label']) for r in rows]); folds=np.array([r['fold'] for r in rows])
def emb(model, x, mean, std):
    ws=T.windows(x); xs=T.to_input(np.stack(ws),mean,std)
    with torch.no_grad():
        h=xs
        for b in model.blocks: h=b(h)
        B,c,f,t=h.shape; h=h.permute(0,3,1,2).reshape(B,t,c*f); o,_=model.lstm(h); e=o.mean(1)
    return e.mean(0).numpy()
E=np.zeros((len(rows),64)); 
for k in T.FOLDS:
    tr=D.items('cry',[f for f in T.FOLDS if f!=k],True); mean,std=T.norm_stats(tr)
    m=T.make_model(2); m.load_state_dict(torch.load(T.RUNS/'cry_cv'/f'fold{k}.pt',weights_only=True)); m.eval()
    for i,r in enumerate(rows):
        if r['fold']==k: E[i]=emb(m,D.clean[r['path']],mean,std)
import librosa
def stats(x):
    mf=librosa.feature.mfcc(S=x.T,n_mfcc=20); return np.concatenate([x.mean(0),x.std(0),mf.mean(1),mf.std(1)])
S=np.array([stats(D.clean[r['path']]) for r in rows])
prior_all=np.bincount(y,minlength=5)/len(y)
def evalP(P,name):
    # cross-fitted tau on log-ratio: pred = argmax(log P + tau*log prior)
    out=[]
    for k in T.FOLDS:
        best=None
        for tau in np.linspace(0,2,41):
            pr=np.argmax(np.log(P+1e-12)+tau*np.log(prior_all),1)
            m=folds!=k
            cm=M.class_metrics(y[m],pr[m],5)
            if cm['accuracy']>=0.75 and (best is None or cm['macro_f1']>best[0]): best=(cm['macro_f1'],tau)
        tau=best[1] if best else 2.0; pr=np.argmax(np.log(P+1e-12)+tau*np.log(prior_all),1); m=folds==k
        out.append([*M.class_metrics(y[m],pr[m],5).values(),tau])
    o=np.array(out); print(name, 'acc %.3f f1 %.3f bal %.3f'%tuple(o[:,:3].mean(0)), 'taus',o[:,3])
for feat,X in [('stats',S),('emb',E),('both',np.hstack([S,E]))]:
  for C in [0.01,0.1,1.0]:
    P=np.zeros((len(rows),5))
    for k in T.FOLDS:
        tr,te=folds!=k,folds==k
        clf=make_pipeline(StandardScaler(),LogisticRegression(C=C,class_weight='balanced',max_iter=5000)).fit(X[tr],y[tr])
        P[te]=clf.predict_proba(X[te])
    raw=[M.class_metrics(y[folds==k],P[folds==k].argmax(1),5) for k in T.FOLDS]
    print(feat,C,'raw f1 %.3f bal %.3f acc %.3f'%(np.mean([r['macro_f1'] for r in raw]),np.mean([r['balanced_accuracy'] for r in raw]),np.mean([r['accuracy'] for r in raw])))
    evalP(P,f'  {feat} C={C} adj')
