// Linking core of vrgv (paper §3.4 eq. 12-13, appendix eq. 14): thresholding, Viterbi, interpolation.
// Pure C++17 on raw pointers, no Python: the pybind11 module (linking_module.cpp) calls it with the GIL
// released. Floating-point operations follow sdk/linking/reference.py in the same order, so all backends
// agree exactly. Build flags come from setup.py (-O3, C++17); no -ffast-math, no FMA contraction.
#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>
#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#define VRGV_SCREEN_AVX512 1
#endif

// The hot loop is compiled for AVX-512, AVX2 and baseline x86-64 and picked at load time (GCC function
// multi-versioning); FMA contraction stays off so every clone rounds exactly like NumPy.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define VRGV_CLONES __attribute__((target_clones("avx512f", "avx2", "default"), optimize("fp-contract=off")))
#define VRGV_EXACT __attribute__((optimize("fp-contract=off"), always_inline))
#else
#define VRGV_CLONES
#define VRGV_EXACT
#endif

namespace vrgv {

struct LinkOutput {
    int status = 0;  // 0: nothing passed (strict), 1: found, 2: fallback
    std::vector<int64_t> kept, sub_path, obj_path;
    double sub_score = 0.0, obj_score = 0.0;
    int64_t start_fid = 0, end_fid = 0;
    std::vector<double> sub_boxes, obj_boxes;  // [end - start + 1, 4] row-major
};

struct LinkInput {
    const double* boxes;     // [N, M, 4]
    const double* alpha_s;   // [N, M]
    const double* alpha_o;   // [N, M]
    const double* beta;      // [N]
    const int64_t* frame_ids;  // [N]
    int64_t n, m, num_frames;
    double sigma, iou_weight;
    bool strict;
};

namespace detail {

// Step 2: candidate indices and [start, stop) offsets of each segment into them.
inline void segments(const double* beta, int64_t n, double threshold, double max_gap,
                     std::vector<int64_t>& cand, std::vector<int64_t>& starts) {
    cand.clear();
    starts.clear();
    for (int64_t i = 0; i < n; ++i)
        if (beta[i] >= threshold) cand.push_back(i);
    for (size_t j = 0; j < cand.size(); ++j)
        if (j == 0 || static_cast<double>(cand[j] - cand[j - 1]) > max_gap) starts.push_back(static_cast<int64_t>(j));
    starts.push_back(static_cast<int64_t>(cand.size()));
}

// Step 3: drop indices that repeat the previous kept frame id.
inline std::vector<int64_t> keep_distinct(const int64_t* seg, int64_t len, const int64_t* fids) {
    std::vector<int64_t> kept;
    kept.reserve(static_cast<size_t>(len));
    for (int64_t j = 0; j < len; ++j)
        if (j == 0 || fids[seg[j]] != fids[seg[j - 1]]) kept.push_back(seg[j]);
    return kept;
}

// Scratch buffers reused across segments of one call.
struct Scratch {
    std::vector<double> prev_s, prev_o, cur_s, cur_o, u_s, u_o, lams, col, gap, lam_gap, gap_area;
    std::vector<int64_t> rows, hits;
};


// Value-returning max/min (std::max returns a reference, which blocks vectorisation).
inline double vmax(double a, double b) { return a > b ? a : b; }
inline double vmin(double a, double b) { return a < b ? a : b; }

// Index of the first maximum of v[0..n) (ties: the lowest index). The maximum comes from four independent
// chains (exact in any order, the inputs hold no NaN), then one scan finds its first position. The one-loop
// "if (v[p] > v[best])" mispredicts on near-uniform attention and was 5% of the worst case.
inline int64_t first_max_index(const double* v, int64_t n) {
    double t0 = v[0], t1 = v[0], t2 = v[0], t3 = v[0];  // four chains: max is exact in any order
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        t0 = vmax(v[i], t0);
        t1 = vmax(v[i + 1], t1);
        t2 = vmax(v[i + 2], t2);
        t3 = vmax(v[i + 3], t3);
    }
    for (; i < n; ++i) t0 = vmax(v[i], t0);
    const double top = vmax(vmax(t0, t1), vmax(t2, t3));
    int64_t best = 0;
    while (v[best] != top) ++best;
    return best;
}

constexpr int64_t kLanes = 8;  // q boxes handled together; arrays over q are padded to a multiple of this

// lam * IoU(p, q) with the inclusive-pixel convention; x2p = x2 + 1 and y2p = y2 + 1 are precomputed per box.
// The formula of reference.pairwise_iou (times lam) in the same operation order, so all backends agree exactly
// and the forward pass and backtracking agree bit for bit.
// `zero` is 0.0 passed at run time: with a literal 0.0 GCC emits compare + masked move instead of one vmaxpd.
VRGV_EXACT inline double link_term(double px1, double py1, double px2p, double py2p, double parea, double qx1,
                                   double qy1, double qx2p, double qy2p, double qarea, double lam, double zero) {
    const double iw = vmax(vmin(px2p, qx2p) - vmax(px1, qx1), zero);
    const double ih = vmax(vmin(py2p, qy2p) - vmax(py1, qy1), zero);
    const double inter = iw * ih;
    return lam * (inter / ((parea + qarea) - inter));
}

// Forward Viterbi step for kBlock boxes q of frame b: best[q] = max over the listed p of U[p] + lam IoU(p, q)
// and init (-inf, or max U after the screen below), for subject and object at once. Only the maxima are kept
// (the argmax is recovered for the one q the path visits, in backtrack_step), so the lane loop is 17 vector
// operations per 8 pairs, and the running maxima stay in registers across p.
template <int64_t kBlock>
VRGV_CLONES inline void step_block(const int64_t* __restrict rows, int64_t n_rows, const double* __restrict ax1,
                                   const double* __restrict ay1, const double* __restrict ax2p,
                                   const double* __restrict ay2p, const double* __restrict aarea,
                                   const double* __restrict us, const double* __restrict uo, double lam,
                                   const double* __restrict bx1, const double* __restrict by1,
                                   const double* __restrict bx2p, const double* __restrict by2p,
                                   const double* __restrict barea, double* __restrict cur_s,
                                   double* __restrict cur_o, double zero, double init_s, double init_o) {
    double cs_[kBlock], co_[kBlock];
    for (int64_t j = 0; j < kBlock; ++j) {
        cs_[j] = init_s;
        co_[j] = init_o;
    }
    for (int64_t r = 0; r < n_rows; ++r) {
        const int64_t p = rows[r];
        const double px1 = ax1[p], py1 = ay1[p], px2p = ax2p[p], py2p = ay2p[p], ar = aarea[p], usp = us[p],
                     uop = uo[p];
        for (int64_t j = 0; j < kBlock; ++j) {
            const double li =
                link_term(px1, py1, px2p, py2p, ar, bx1[j], by1[j], bx2p[j], by2p[j], barea[j], lam, zero);
            cs_[j] = vmax(usp + li, cs_[j]);
            co_[j] = vmax(uop + li, co_[j]);
        }
    }
    for (int64_t j = 0; j < kBlock; ++j) {
        cur_s[j] = cs_[j];
        cur_o[j] = co_[j];
    }
}

#ifdef VRGV_SCREEN_AVX512
// Relative margin by which screen_rows is conservative: far above its rounding error (a few units of 2^-53), far
// below any gap that matters.
constexpr double kScreenSlack = 1e-12;

#ifndef VRGV_SCREEN_MIN_ROWS
#define VRGV_SCREEN_MIN_ROWS 16
#endif
constexpr int64_t kScreenMinRows = VRGV_SCREEN_MIN_ROWS;

// The division-free screen of a Viterbi step with lam > 0, for the 8 boxes q of frame b at bx1.. (AVX-512).
// best[q] >= top = max_p U[p], since the argmax p* of U has IoU >= 0. A pair (p, q) can beat top only if
// lam IoU(p, q) > gap[p] = top - U[p], that is (lam + gap[p]) inter > gap[p] (area[p] + area[q]): no division.
// gap[p] is the smaller of the subject's and object's, shrunk by kScreenSlack, so that rounding never drops a
// pair that could win. Lists in `hits` (without a branch on the data) the rows p where some lane passes; every
// other pair's value is <= top. step_block over the hits, starting from top, then gives best[q] bit for bit
// (p* has gap 0 and is always listed). On near-uniform attention about 1.6% of pairs and 10% of (row, block)s
// pass (linking.md, session 9), so most of the IoU divisions, 16 cycles per 8 pairs, go. Per row and block the
// screen is 11 vector operations: the intersection needs only one clamp at 0, since a negative height with a
// clamped width gives inter <= 0, which fails for gap > 0 as the true inter = 0 does.
// lam_gap[p] = lam + gap[p] and gap_area[p] = gap[p] * area[p].
__attribute__((target("avx512f"))) inline int64_t screen_rows(
    const int64_t* __restrict rows, int64_t n_rows, const double* __restrict ax1, const double* __restrict ay1,
    const double* __restrict ax2p, const double* __restrict ay2p, const double* __restrict gap,
    const double* __restrict lam_gap, const double* __restrict gap_area, const double* __restrict bx1,
    const double* __restrict by1, const double* __restrict bx2p, const double* __restrict by2p,
    const double* __restrict barea, int64_t* __restrict hits) {
    const __m512d qx1 = _mm512_loadu_pd(bx1), qy1 = _mm512_loadu_pd(by1), qx2p = _mm512_loadu_pd(bx2p),
                  qy2p = _mm512_loadu_pd(by2p), qarea = _mm512_loadu_pd(barea), zero = _mm512_setzero_pd();
    int64_t n_hits = 0;
    for (int64_t r = 0; r < n_rows; ++r) {
        const int64_t p = rows[r];
        const __m512d iw = _mm512_max_pd(_mm512_sub_pd(_mm512_min_pd(_mm512_set1_pd(ax2p[p]), qx2p),
                                                       _mm512_max_pd(_mm512_set1_pd(ax1[p]), qx1)), zero);
        const __m512d ih = _mm512_sub_pd(_mm512_min_pd(_mm512_set1_pd(ay2p[p]), qy2p),
                                         _mm512_max_pd(_mm512_set1_pd(ay1[p]), qy1));
        const __m512d lhs = _mm512_mul_pd(_mm512_set1_pd(lam_gap[p]), _mm512_mul_pd(iw, ih));
        const __m512d rhs = _mm512_fmadd_pd(_mm512_set1_pd(gap[p]), qarea, _mm512_set1_pd(gap_area[p]));
        const __mmask8 pass = _mm512_cmp_pd_mask(lhs, rhs, _CMP_GE_OQ);
        hits[n_hits] = p;
        n_hits += pass != 0;
    }
    return n_hits;
}

// Off only in tests and A/B timing (the module's _set_screen), to compare both paths on one machine.
inline std::atomic<bool> screen_enabled{true};

// Whether this call screens: the CPU has AVX-512 (checked once) and the screen is not switched off.
inline bool screen_available() {
    static const bool cpu = __builtin_cpu_supports("avx512f");
    return cpu && screen_enabled.load(std::memory_order_relaxed);
}
#else
inline std::atomic<bool> screen_enabled{false};
inline bool screen_available() { return false; }
#endif

// Candidate scores c[p] = U[p] + lam IoU(p, q) of every box p of frame a for one box q of frame b.
VRGV_CLONES inline void column_scores(int64_t m, const double* __restrict ax1, const double* __restrict ay1,
                                      const double* __restrict ax2p, const double* __restrict ay2p,
                                      const double* __restrict aarea, const double* __restrict u, double qx1,
                                      double qy1, double qx2p, double qy2p, double qarea, double lam,
                                      double* __restrict c, double zero) {
    for (int64_t p = 0; p < m; ++p)
        c[p] = u[p] + link_term(ax1[p], ay1[p], ax2p[p], ay2p[p], aarea[p], qx1, qy1, qx2p, qy2p, qarea, lam, zero);
}

// reference.live_rows: boxes p of frame a that may still be the best predecessor of some q. With
// U[p] = prev[p] + alpha_a[p], a p more than |lam| (+ eps) below max U loses to argmax U for every q, strictly.
// Also returns max U in top_s and top_o.
inline int64_t live_rows(int64_t m, const double* us, const double* uo, const double* sb, const double* ob,
                         double lam, int64_t* rows, double& top_s_out, double& top_o_out) {
    double top_s = -std::numeric_limits<double>::infinity(), top_o = top_s, big_s = 0.0, big_o = 0.0;
    for (int64_t p = 0; p < m; ++p) {
        top_s = vmax(us[p], top_s);
        top_o = vmax(uo[p], top_o);
        big_s = vmax(std::fabs(sb[p]), big_s);
        big_o = vmax(std::fabs(ob[p]), big_o);
    }
    const double al = std::fabs(lam);
    const double thr_s = top_s - al - 1e-9 * (1.0 + std::fabs(top_s) + al + big_s);
    const double thr_o = top_o - al - 1e-9 * (1.0 + std::fabs(top_o) + al + big_o);
    int64_t n = 0;
    for (int64_t p = 0; p < m; ++p)
        if (us[p] >= thr_s || uo[p] >= thr_o) rows[n++] = p;
    top_s_out = top_s;
    top_o_out = top_o;
    return n;
}

// x1, y1, x2 + 1, y2 + 1 and the inclusive area of `count` boxes; __restrict lets GCC vectorise it.
VRGV_CLONES inline void fill_geometry(const double* __restrict boxes, int64_t count, double* __restrict x1,
                                      double* __restrict y1, double* __restrict x2p, double* __restrict y2p,
                                      double* __restrict area) {
    for (int64_t i = 0; i < count; ++i) {
        const double* bx = boxes + 4 * i;
        x1[i] = bx[0];
        y1[i] = bx[1];
        x2p[i] = bx[2] + 1.0;
        y2p[i] = bx[3] + 1.0;
        area[i] = (bx[2] - bx[0] + 1.0) * (bx[3] - bx[1] + 1.0);
    }
}

// Per-box geometry: x1, y1, x2 + 1, y2 + 1 and the inclusive area. Frame i's boxes start at i * stride; stride
// is M rounded up to whole lane blocks, so a Viterbi step reads frame b's boxes in place. Padding boxes are
// (0, 0, 0, 0) with area 1: their intersection with any box is 0, and the lanes that hold them are computed but
// never read. One relation fills only the frames its segments keep (`need`); link_many fills all frames once
// (`fill_all`) and shares them, read-only, between relations and threads.
struct Geometry {
    std::vector<double> x1, y1, x2p, y2p, area;
    std::vector<uint8_t> ready;  // per frame: filled
    const double* boxes = nullptr;
    int64_t m = 0, stride = 0;
    double zero = 0.0;  // link_term's floor, a run-time value (see there)

    void reset(const double* boxes_, int64_t n, int64_t m_, int64_t lanes) {
        boxes = boxes_;
        m = m_;
        stride = (m + lanes - 1) / lanes * lanes;
        const size_t count = static_cast<size_t>(n * stride);
        for (auto* v : {&x1, &y1, &x2p, &y2p, &area}) v->resize(count);
        ready.assign(static_cast<size_t>(n), 0);
    }
    void fill(int64_t i) {
        const int64_t o = i * stride;
        fill_geometry(boxes + 4 * i * m, m, x1.data() + o, y1.data() + o, x2p.data() + o, y2p.data() + o,
                      area.data() + o);
        for (int64_t j = o + m; j < o + stride; ++j) {
            x1[j] = y1[j] = x2p[j] = y2p[j] = 0.0;
            area[j] = 1.0;
        }
        ready[static_cast<size_t>(i)] = 1;
    }
    void need(const std::vector<int64_t>& frames) {
        for (const int64_t i : frames)
            if (!ready[static_cast<size_t>(i)]) fill(i);
    }
    void fill_all(const double* boxes_, int64_t n, int64_t m_, int64_t lanes) {
        reset(boxes_, n, m_, lanes);
        if (stride == m) {  // no padding: one pass over all boxes
            fill_geometry(boxes, n * m, x1.data(), y1.data(), x2p.data(), y2p.data(), area.data());
            ready.assign(static_cast<size_t>(n), 1);
            return;
        }
        for (int64_t i = 0; i < n; ++i) fill(i);
    }
};

// Buffers of one thread, kept between calls: allocating them per call cost more than the geometry itself,
// because freed blocks went back to the OS and every call paid the page faults again.
struct Workspace {
    Geometry geo;
    Scratch scratch;
    std::vector<int64_t> cand, starts, sp, op;
};

inline Workspace& thread_workspace() {
    thread_local Workspace ws;
    return ws;
}

// The predecessor of box q at one step: the lowest p maximising U[p] + lam IoU(p, q), recomputed with the forward
// pass's operations for the single q the path visits. Boxes that live_rows skipped are strictly worse than the
// best, so scanning every p gives the same argmax as scanning the live ones.
inline int64_t backtrack_step(const Geometry& g, int64_t a_off, int64_t bq, int64_t m, const double* u, double lam,
                              double* c) {
    column_scores(m, g.x1.data() + a_off, g.y1.data() + a_off, g.x2p.data() + a_off, g.y2p.data() + a_off,
                  g.area.data() + a_off, u, g.x1[bq], g.y1[bq], g.x2p[bq], g.y2p[bq], g.area[bq], lam, c, g.zero);
    return first_max_index(c, m);
}

// Steps 4-5 for subject and object over kept indices (K >= 2). prev[q] is the best path score ending in q;
// a step takes U[p] = prev[p] + alpha_a[p], best[q] = max_p U[p] + lam IoU(p, q) (lowest p on ties), and
// prev[q] = best[q] + alpha_b[q]. The final argmax keeps the lowest box.
inline void viterbi_pair(const LinkInput& in, const Geometry& g, const std::vector<int64_t>& kept, Scratch& w,
                         std::vector<int64_t>& path_s, double& score_s, std::vector<int64_t>& path_o,
                         double& score_o) {
    const int64_t m = in.m;
    const size_t k_len = kept.size();
    const int64_t mp = g.stride;  // padded; lanes q >= m are computed, never read
    w.prev_s.assign(m, 0.0);
    w.prev_o.assign(m, 0.0);
    w.cur_s.assign(mp, 0.0);
    w.cur_o.assign(mp, 0.0);
    w.u_s.resize((k_len - 1) * m);
    w.u_o.resize((k_len - 1) * m);
    w.rows.resize(m);
    w.hits.resize(m);
    w.gap.resize(m);
    w.lam_gap.resize(m);
    w.gap_area.resize(m);
    w.lams.resize(k_len - 1);
    w.col.resize(m);
    for (size_t t = 1; t < k_len; ++t) {
        const int64_t a = kept[t - 1], b = kept[t];
        const double lam = in.iou_weight / static_cast<double>(in.frame_ids[b] - in.frame_ids[a]);
        const int64_t ao = a * mp, bo = b * mp;
        const double *bx1 = g.x1.data() + bo, *by1 = g.y1.data() + bo, *bx2p = g.x2p.data() + bo,
                     *by2p = g.y2p.data() + bo, *barea = g.area.data() + bo;
        double* us = w.u_s.data() + (t - 1) * m;
        double* uo = w.u_o.data() + (t - 1) * m;
        const double* sa = in.alpha_s + a * m;
        const double* oa = in.alpha_o + a * m;
        for (int64_t p = 0; p < m; ++p) {
            us[p] = w.prev_s[p] + sa[p];
            uo[p] = w.prev_o[p] + oa[p];
        }
        int64_t* rows = w.rows.data();
        double top_s, top_o;
        const int64_t n_live =
            live_rows(m, us, uo, in.alpha_s + b * m, in.alpha_o + b * m, lam, rows, top_s, top_o);
        w.lams[t - 1] = lam;
        const double* ax1 = g.x1.data() + ao;
        const double* ay1 = g.y1.data() + ao;
        const double* ax2p = g.x2p.data() + ao;
        const double* ay2p = g.y2p.data() + ao;
        const double* aarea = g.area.data() + ao;
#ifdef VRGV_SCREEN_AVX512
        // The screen needs IoU terms >= 0, so that max U bounds every best[q] from below.
        if (lam > 0.0 && n_live >= kScreenMinRows && screen_available()) {
            for (int64_t p = 0; p < m; ++p) {
                const double gp = vmin(top_s - us[p], top_o - uo[p]) * (1.0 - kScreenSlack);
                w.gap[p] = gp;
                w.lam_gap[p] = lam + gp;
                w.gap_area[p] = gp * aarea[p];
            }
            int64_t* hits = w.hits.data();
            for (int64_t q0 = 0; q0 < mp; q0 += kLanes) {
                const int64_t n_hits =
                    screen_rows(rows, n_live, ax1, ay1, ax2p, ay2p, w.gap.data(), w.lam_gap.data(), w.gap_area.data(),
                                bx1 + q0, by1 + q0, bx2p + q0, by2p + q0, barea + q0, hits);
                step_block<kLanes>(hits, n_hits, ax1, ay1, ax2p, ay2p, aarea, us, uo, lam, bx1 + q0, by1 + q0,
                                   bx2p + q0, by2p + q0, barea + q0, w.cur_s.data() + q0, w.cur_o.data() + q0, g.zero,
                                   top_s, top_o);
            }
        } else
#endif
        {
            const double ninf = -std::numeric_limits<double>::infinity();
            for (int64_t q0 = 0; q0 < mp;) {  // two lane blocks per pass while two remain, then one
                const bool pair = q0 + 2 * kLanes <= mp;
                (pair ? step_block<2 * kLanes> : step_block<kLanes>)(
                    rows, n_live, ax1, ay1, ax2p, ay2p, aarea, us, uo, lam, bx1 + q0, by1 + q0,
                    bx2p + q0, by2p + q0, barea + q0, w.cur_s.data() + q0,
                    w.cur_o.data() + q0, g.zero, ninf, ninf);
                q0 += pair ? 2 * kLanes : kLanes;
            }
        }
        const double* sb = in.alpha_s + b * m;
        const double* ob = in.alpha_o + b * m;
        for (int64_t q = 0; q < m; ++q) {
            w.prev_s[q] = w.cur_s[q] + sb[q];
            w.prev_o[q] = w.cur_o[q] + ob[q];
        }
    }
    path_s.assign(k_len, 0);
    path_o.assign(k_len, 0);
    const auto first_max = [m](const std::vector<double>& v) { return first_max_index(v.data(), m); };
    path_s[k_len - 1] = first_max(w.prev_s);
    path_o[k_len - 1] = first_max(w.prev_o);
    score_s = w.prev_s[path_s[k_len - 1]] / static_cast<double>(k_len - 1);
    score_o = w.prev_o[path_o[k_len - 1]] / static_cast<double>(k_len - 1);
    for (size_t t = k_len - 1; t > 0; --t) {
        const int64_t a_off = kept[t - 1] * mp, b_off = kept[t] * mp;
        const double lam = w.lams[t - 1];
        path_s[t - 1] = backtrack_step(g, a_off, b_off + path_s[t], m, w.u_s.data() + (t - 1) * m, lam, w.col.data());
        path_o[t - 1] = backtrack_step(g, a_off, b_off + path_o[t], m, w.u_o.data() + (t - 1) * m, lam, w.col.data());
    }
}

// Step 7 (eq. 14): one box per real frame between the first and last kept frame.
inline std::vector<double> interpolate(const LinkInput& in, const std::vector<int64_t>& kept,
                                       const std::vector<int64_t>& path) {
    const size_t k_len = kept.size();
    const int64_t* f = in.frame_ids;
    const int64_t f0 = f[kept[0]];
    const int64_t length = f[kept[k_len - 1]] - f0 + 1;
    std::vector<double> out(static_cast<size_t>(length) * 4);
    const auto box = [&](size_t k) { return in.boxes + (kept[k] * in.m + path[k]) * 4; };
    if (k_len == 1) {
        std::copy(box(0), box(0) + 4, out.begin());
        return out;
    }
    size_t k = 0;
    for (int64_t i = 0; i < length; ++i) {
        const int64_t fc = f0 + i;
        while (k < k_len - 2 && f[kept[k + 1]] <= fc) ++k;
        const int64_t lo = f[kept[k]], hi = f[kept[k + 1]];
        const double gap = static_cast<double>(hi - lo);
        const double w_lo = static_cast<double>(hi - fc) / gap;
        const double w_hi = static_cast<double>(fc - lo) / gap;
        const double* b0 = box(k);
        const double* b1 = box(k + 1);
        for (int c = 0; c < 4; ++c) out[4 * i + c] = w_lo * b0[c] + w_hi * b1[c];
    }
    return out;
}

inline int64_t first_argmax(const double* v, int64_t n) {
    int64_t best = 0;
    for (int64_t i = 1; i < n; ++i)
        if (v[i] > v[best]) best = i;
    return best;
}

}  // namespace detail

// Steps 1-8 for one relation. `shared`: the geometry of in.boxes from Geometry::fill_all (link_many computes it
// once per video); without it, the frames that segments keep are filled in this thread's workspace.
inline LinkOutput link_one(const LinkInput& in, const detail::Geometry* shared = nullptr) {
    using namespace detail;
    LinkOutput out;
    const int64_t n = in.n, m = in.m;
    Workspace& ws = thread_workspace();
    if (!shared) ws.geo.reset(in.boxes, n, m, kLanes);
    const Geometry& geo = shared ? *shared : ws.geo;
    const auto link_segment = [&](const std::vector<int64_t>& kept, std::vector<int64_t>& sp_, double& ss_,
                                  std::vector<int64_t>& op_, double& os_) {
        if (!shared) ws.geo.need(kept);
        viterbi_pair(in, geo, kept, ws.scratch, sp_, ss_, op_, os_);
    };
    const double ten_r = 10.0 * (static_cast<double>(n) / static_cast<double>(in.num_frames));
    const double max_gap = std::max(1.0, ten_r);
    const int64_t min_len = std::max<int64_t>(1, static_cast<int64_t>(ten_r));
    std::vector<int64_t>&cand = ws.cand, &starts = ws.starts, &sp = ws.sp, &op = ws.op;
    segments(in.beta, n, in.sigma, max_gap, cand, starts);
    bool found = false;
    double best = 0.0, ss = 0.0, os = 0.0;
    for (size_t g = 0; g + 1 < starts.size(); ++g) {
        const int64_t len = starts[g + 1] - starts[g];
        if (len <= min_len) continue;
        std::vector<int64_t> kept = keep_distinct(cand.data() + starts[g], len, in.frame_ids);
        if (kept.size() < 2) continue;
        link_segment(kept, sp, ss, op, os);
        const double score = (ss + os) / 2.0;
        if (!found || score > best) {
            found = true;
            best = score;
            out.kept = std::move(kept);
            out.sub_path = sp;
            out.obj_path = op;
            out.sub_score = ss;
            out.obj_score = os;
        }
    }
    out.status = 1;
    if (!found) {
        if (in.strict) {
            out.status = 0;
            return out;
        }
        out.status = 2;
        const int64_t peak = first_argmax(in.beta, n);
        const double top = in.beta[peak];
        segments(in.beta, n, std::min(top / 2.0, top), max_gap, cand, starts);
        for (size_t g = 0; g + 1 < starts.size(); ++g) {
            if (cand[starts[g]] <= peak && peak <= cand[starts[g + 1] - 1]) {
                out.kept = keep_distinct(cand.data() + starts[g], starts[g + 1] - starts[g], in.frame_ids);
                break;
            }
        }
        if (out.kept.size() >= 2) {
            link_segment(out.kept, out.sub_path, out.sub_score, out.obj_path, out.obj_score);
        } else {
            const int64_t i = out.kept[0];
            out.sub_path = {first_argmax(in.alpha_s + i * m, m)};
            out.obj_path = {first_argmax(in.alpha_o + i * m, m)};
            out.sub_score = in.alpha_s[i * m + out.sub_path[0]];
            out.obj_score = in.alpha_o[i * m + out.obj_path[0]];
        }
    }
    out.start_fid = in.frame_ids[out.kept.front()];
    out.end_fid = in.frame_ids[out.kept.back()];
    out.sub_boxes = interpolate(in, out.kept, out.sub_path);
    out.obj_boxes = interpolate(in, out.kept, out.obj_path);
    return out;
}

}  // namespace vrgv
