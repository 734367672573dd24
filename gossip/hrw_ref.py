#!/usr/bin/env python3
"""hrw_ref.py - reference implementation of shoal placement version 2 (see gossip/README.md),
in pure Python with only the standard library. Prints the known-answer vectors checked by
tests/test_hrw.c. A range key is BLAKE2b-128 of the normalised uri (proto/uri.h) followed by the
range index as 8 bytes big-endian; the uris below are already in normal form."""
import hashlib, math, struct
M=(1<<64)-1
def rotl(x,b): return ((x<<b)|(x>>(64-b)))&M
def siphash24(k,m):
    k0,k1=struct.unpack('<QQ',k)
    v0=k0^0x736f6d6570736575; v1=k1^0x646f72616e646f6d; v2=k0^0x6c7967656e657261; v3=k1^0x7465646279746573
    def rnd():
        nonlocal v0,v1,v2,v3
        v0=(v0+v1)&M; v1=rotl(v1,13); v1^=v0; v0=rotl(v0,32)
        v2=(v2+v3)&M; v3=rotl(v3,16); v3^=v2
        v0=(v0+v3)&M; v3=rotl(v3,21); v3^=v0
        v2=(v2+v1)&M; v1=rotl(v1,17); v1^=v2; v2=rotl(v2,32)
    b=(len(m)&0xff)<<56
    n=len(m)//8*8
    for i in range(0,n,8):
        mi=struct.unpack('<Q',m[i:i+8])[0]; v3^=mi; rnd(); rnd(); v0^=mi
    t=m[n:]+bytes(8-len(m[n:])); b|=struct.unpack('<Q',t)[0]
    v3^=b; rnd(); rnd(); v0^=b; v2^=0xff
    for _ in range(4): rnd()
    return v0^v1^v2^v3
K=b'shoal-hrw-v1\0\0\0\0'
ids=[bytes(16*i+j for j in range(16)) for i in range(5)]
w=[(i+1)<<30 for i in range(5)]
PLACEMENT_VERSION=2
def uri_key(normal_uri): return hashlib.blake2b(normal_uri.encode('utf-8'),digest_size=16).digest()
URI='s3://datasets/imagenet-full/train/n01440764/img 0001.JPEG'
for u in (URI, 'file:///data/caf\u00e9/%3F.bin'):
    print(repr(u), uri_key(u).hex())
fk=uri_key(URI)
print(hex(siphash24(K,ids[0]+fk+struct.pack('>Q',0))))
for r in range(8):
    key=fk+struct.pack('>Q',r)
    sc=[]
    for i in range(5):
        h=siphash24(K,ids[i]+key); u=((h>>12)+0.5)/2**52
        sc.append((-w[i]/math.log(u), i))
    sc.sort(key=lambda t:(-t[0], ids[t[1]]))
    print(r,[i for _,i in sc[:3]], repr(sc[[i for _,i in sc].index(0)][0]))
