#!/usr/bin/env python3
# The independent reference the tests of src/rdp.test.ts quote: python3 scripts/rdp-reference.py (needs mpmath;
# about 2 minutes). It reads the definition of A_alpha, not this package, and prints epsilon under both conversions.
# Independent reference: A_alpha = E_{z~N(0,s^2)}[((1-q) + q*exp((2z-1)/(2s^2)))^alpha], by quadrature (mpmath).
import mpmath as mp, sys
mp.mp.dps = 40
def log_a(q, s, a):
    q, s, a = mp.mpf(q), mp.mpf(s), mp.mpf(a)
    if a == int(a):
        a=int(a)
        return mp.log(mp.fsum(mp.binomial(a,i)*q**i*(1-q)**(a-i)*mp.e**((i*i-i)/(2*s*s)) for i in range(a+1)))
    f = lambda z: mp.npdf(z,0,s)*((1-q)+q*mp.e**((2*z-1)/(2*s*s)))**a
    return mp.log(mp.quad(f,[-mp.inf,-10*s,0,10*s,mp.inf]))
def rdp(q,s,steps,orders): return [log_a(q,s,a)/(a-1)*steps for a in orders]
def eps_improved(orders,r,d):
    return min(r_ - (mp.log(d)+mp.log(a))/(a-1) + mp.log((a-1)/mp.mpf(a)) for a,r_ in zip(orders,r))
def eps_classic(orders,r,d):
    return min(r_ - mp.log(d)/(a-1) for a,r_ in zip(orders,r))
STD=[1+x/10 for x in range(1,100)]+list(range(12,64))+[128,256,512]
STD_INT=[a for a in STD if a==int(a)]
def show(name,q,s,steps,d,orders):
    r=rdp(q,s,steps,orders)
    print(name, 'classic=%.6f improved=%.6f'%(eps_classic(orders,r,d),eps_improved(orders,r,d)))
show('tfp test q=.01 s=4 10000 d=1e-5 orders2..32', 0.01,4,10000,1e-5,list(range(2,33)))
o=(1.25,1.5,1.75,2.,2.5,3.,4.,5.,6.,7.,8.,10.,12.,14.,16.,20.,24.,28.,32.,64.,256.)
r1=rdp(1e-4,.4,40000,o); r2=rdp(0.1,2,100,o); r=[a+b for a,b in zip(r1,r2)]
print('composition classic=%.6f improved=%.6f'%(eps_classic(o,r,1e-5),eps_improved(o,r,1e-5)))
q=256/60000
for s,ep in [(1.1,60),(1.12,60),(0.6,30),(1.2,10)]:
    steps=ep*60000//256
    show('mnist s=%s ep=%d steps=%d std'%(s,ep,steps),q,s,steps,1e-5,STD)
    show('mnist s=%s ep=%d int-only'%(s,ep),q,s,steps,1e-5,STD_INT)
