// A/B timing of two versions of cpp_ext/linking_core.hpp in one process (the `worst` case of
// bench_linking.py: N=120, M=40, all frames above sigma, near-uniform attention; random boxes).
// Each version runs 150 calls per round, alternating over 15 rounds; it prints the minimum over rounds of
// each version's median, and whether both versions return the same paths and scores.
// Built and run by ab.sh.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>
#include <chrono>
#include <random>
#include <cstdio>
#include <cstring>
#include <immintrin.h>
namespace A {
#include OLDHDR
}
namespace B {
#include NEWHDR
}
template <class In, class F> double round_median(const In& in, F f, int reps) {
  std::vector<double> ts; double chk = 0;
  for (int r = 0; r < reps; ++r) { auto t0 = std::chrono::steady_clock::now(); auto o = f(in); auto t1 = std::chrono::steady_clock::now();
    ts.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count()); chk += o.sub_score; }
  std::sort(ts.begin(), ts.end()); return ts[ts.size() / 2] + 0 * chk;
}
int main() {
  const int64_t n = 120, m = 40, nf = 1200;
  std::mt19937_64 g(0); std::uniform_real_distribution<double> u(0,1);
  std::vector<double> boxes(n*m*4), as(n*m), ao(n*m), beta(n); std::vector<int64_t> fid(n);
  for (int64_t i=0;i<n*m;++i){double x=640*u(g),y=640*u(g),w=8+232*u(g),h=8+232*u(g); boxes[4*i]=x;boxes[4*i+1]=y;boxes[4*i+2]=x+w;boxes[4*i+3]=y+h; as[i]=1.0/m+1e-4*u(g); ao[i]=1.0/m+1e-4*u(g);}
  for (int64_t i=0;i<n;++i){beta[i]=0.05+0.15*u(g); fid[i]=(int64_t)std::llround(i*(nf-1.0)/(n-1));}
  A::vrgv::LinkInput ia{boxes.data(),as.data(),ao.data(),beta.data(),fid.data(),n,m,nf,0.04,1.0,false};
  B::vrgv::LinkInput ib{boxes.data(),as.data(),ao.data(),beta.data(),fid.data(),n,m,nf,0.04,1.0,false};
  auto oa = A::vrgv::link_one(ia); auto ob = B::vrgv::link_one(ib);
  printf("same: %d %d %.17g %.17g\n", oa.sub_path == ob.sub_path && oa.obj_path == ob.obj_path, oa.kept == ob.kept, oa.sub_score - ob.sub_score, oa.obj_score - ob.obj_score);
  double ma = 1e9, mb = 1e9;
  for (int round = 0; round < 15; ++round) {
    ma = std::min(ma, round_median(ia, [](auto& x){return A::vrgv::link_one(x);}, 150));
    mb = std::min(mb, round_median(ib, [](auto& x){return B::vrgv::link_one(x);}, 150));
  }
  printf("old %.1f us  new %.1f us (min over rounds of the median)\n", ma, mb);
}
