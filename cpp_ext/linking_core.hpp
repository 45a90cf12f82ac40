// Linking core of vrgv (paper §3.4 eq. 12-13, appendix eq. 14): thresholding, Viterbi, interpolation.
// Pure C++17 on raw pointers, no Python: the pybind11 module (linking_module.cpp) calls it with the GIL
// released. Floating-point operations follow sdk/linking/reference.py in the same order, so all backends
// agree exactly. Build flags come from setup.py (-O3, C++17); no -ffast-math, no FMA contraction.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

// The hot loop is compiled for AVX-512, AVX2 and baseline x86-64 and picked at load time (GCC function
// multi-versioning); FMA contraction stays off so every clone rounds exactly like NumPy.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define VRGV_CLONES __attribute__((target_clones("avx512f", "avx2", "default"), optimize("fp-contract=off")))
#else
#define VRGV_CLONES
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
    std::vector<double> prev_s, prev_o, cur_s, cur_o, bx1, by1, bx2, by2, barea, as_b, ao_b;
    std::vector<int64_t> back_s, back_o, rows;
};


// Value-returning max/min (std::max returns a reference, which blocks vectorisation).
inline double vmax(double a, double b) { return a > b ? a : b; }
inline double vmin(double a, double b) { return a < b ? a : b; }

constexpr int64_t kLanes = 8;  // q boxes handled together; arrays over q are padded to a multiple of this

// One Viterbi step for a block of kLanes boxes q of frame b against each live box p (rows) of frame a, for subject and
// object at once. Branch-free so the compiler vectorises the lane loops; the block's running maxima stay in
// registers across p. Strict '>' with p ascending keeps the lowest p on ties.
VRGV_CLONES inline void step_block(const int64_t* __restrict rows, int64_t n_rows, const double* __restrict pa, const double* __restrict parea,
                                   const double* __restrict pas, const double* __restrict pao,
                                   const double* __restrict prev_s, const double* __restrict prev_o, double lam,
                                   const double* __restrict bx1, const double* __restrict by1,
                                   const double* __restrict bx2, const double* __restrict by2,
                                   const double* __restrict barea, const double* __restrict asb,
                                   const double* __restrict aob, double* __restrict cur_s, double* __restrict cur_o,
                                   int64_t* __restrict back_s, int64_t* __restrict back_o) {
    double cs_[kLanes], co_[kLanes];
    int64_t bs_[kLanes], bo_[kLanes];
    for (int64_t j = 0; j < kLanes; ++j) {
        cs_[j] = -std::numeric_limits<double>::infinity();
        co_[j] = cs_[j];
        bs_[j] = 0;
        bo_[j] = 0;
    }
    for (int64_t r = 0; r < n_rows; ++r) {
        const int64_t p = rows[r];
        const double px1 = pa[4 * p], py1 = pa[4 * p + 1], px2 = pa[4 * p + 2], py2 = pa[4 * p + 3];
        const double ar = parea[p], asp = pas[p], aop = pao[p], psp = prev_s[p], pop = prev_o[p];
        for (int64_t j = 0; j < kLanes; ++j) {
            const double ix1 = vmax(px1, bx1[j]);
            const double iy1 = vmax(py1, by1[j]);
            const double ix2 = vmin(px2, bx2[j]);
            const double iy2 = vmin(py2, by2[j]);
            const double iw = vmax(ix2 - ix1 + 1.0, 0.0);
            const double ih = vmax(iy2 - iy1 + 1.0, 0.0);
            const double inter = iw * ih;
            const double li = lam * (inter / ((ar + barea[j]) - inter));
            const double cs = psp + ((asp + asb[j]) + li);
            const double co = pop + ((aop + aob[j]) + li);
            const int64_t ms = -static_cast<int64_t>(cs > cs_[j]);
            const int64_t mo = -static_cast<int64_t>(co > co_[j]);
            bs_[j] = (bs_[j] & ~ms) | (p & ms);
            bo_[j] = (bo_[j] & ~mo) | (p & mo);
            cs_[j] = vmax(cs, cs_[j]);
            co_[j] = vmax(co, co_[j]);
        }
    }
    for (int64_t j = 0; j < kLanes; ++j) {
        cur_s[j] = cs_[j];
        cur_o[j] = co_[j];
        back_s[j] = bs_[j];
        back_o[j] = bo_[j];
    }
}

// reference.live_rows: boxes p of frame a that may still be the best predecessor of some q. With
// U[p] = prev[p] + alpha_a[p], a p more than |lam| (+ eps) below max U loses to argmax U for every q, strictly.
inline int64_t live_rows(int64_t m, const double* prev_s, const double* prev_o, const double* sa, const double* oa,
                         const double* sb, const double* ob, double lam, int64_t* rows) {
    double top_s = -std::numeric_limits<double>::infinity(), top_o = top_s, big_s = 0.0, big_o = 0.0;
    for (int64_t p = 0; p < m; ++p) {
        top_s = std::max(top_s, prev_s[p] + sa[p]);
        top_o = std::max(top_o, prev_o[p] + oa[p]);
        big_s = std::max(big_s, std::fabs(sb[p]));
        big_o = std::max(big_o, std::fabs(ob[p]));
    }
    const double al = std::fabs(lam);
    const double thr_s = top_s - al - 1e-9 * (1.0 + std::fabs(top_s) + al + big_s);
    const double thr_o = top_o - al - 1e-9 * (1.0 + std::fabs(top_o) + al + big_o);
    int64_t n = 0;
    for (int64_t p = 0; p < m; ++p)
        if (prev_s[p] + sa[p] >= thr_s || prev_o[p] + oa[p] >= thr_o) rows[n++] = p;
    return n;
}

// Steps 4-5 for subject and object over kept indices (K >= 2). Loop p outer, q inner with strict '>'
// keeps the lowest previous box on ties; the final argmax keeps the lowest box.
inline void viterbi_pair(const LinkInput& in, const double* areas, const std::vector<int64_t>& kept,
                         Scratch& w, std::vector<int64_t>& path_s, double& score_s,
                         std::vector<int64_t>& path_o, double& score_o) {
    const int64_t m = in.m;
    const size_t k_len = kept.size();
    const int64_t mp = (m + kLanes - 1) / kLanes * kLanes;  // padded; lanes q >= m are computed, never read
    w.prev_s.assign(m, 0.0);
    w.prev_o.assign(m, 0.0);
    w.cur_s.assign(mp, 0.0);
    w.cur_o.assign(mp, 0.0);
    for (auto* v : {&w.bx1, &w.by1, &w.bx2, &w.by2, &w.as_b, &w.ao_b}) v->assign(mp, 0.0);
    w.barea.assign(mp, 1.0);
    w.rows.resize(m);
    w.back_s.resize((k_len - 1) * mp);
    w.back_o.resize((k_len - 1) * mp);
    double* cs_ = w.cur_s.data();
    double* co_ = w.cur_o.data();
    double* bx1 = w.bx1.data(); double* by1 = w.by1.data(); double* bx2 = w.bx2.data(); double* by2 = w.by2.data();
    double* barea = w.barea.data(); double* as_b = w.as_b.data(); double* ao_b = w.ao_b.data();
    for (size_t t = 1; t < k_len; ++t) {
        const int64_t a = kept[t - 1], b = kept[t];
        const double lam = in.iou_weight / static_cast<double>(in.frame_ids[b] - in.frame_ids[a]);
        const double* boxb = in.boxes + b * m * 4;
        for (int64_t q = 0; q < m; ++q) {
            bx1[q] = boxb[4 * q]; by1[q] = boxb[4 * q + 1]; bx2[q] = boxb[4 * q + 2]; by2[q] = boxb[4 * q + 3];
            barea[q] = areas[b * m + q];
            as_b[q] = in.alpha_s[b * m + q];
            ao_b[q] = in.alpha_o[b * m + q];
        }
        int64_t* bs = w.back_s.data() + (t - 1) * mp;
        int64_t* bo = w.back_o.data() + (t - 1) * mp;
        const int64_t n_live = live_rows(m, w.prev_s.data(), w.prev_o.data(), in.alpha_s + a * m,
                                         in.alpha_o + a * m, in.alpha_s + b * m, in.alpha_o + b * m, lam,
                                         w.rows.data());
        for (int64_t q0 = 0; q0 < mp; q0 += kLanes)
            step_block(w.rows.data(), n_live, in.boxes + a * m * 4, areas + a * m, in.alpha_s + a * m, in.alpha_o + a * m,
                       w.prev_s.data(), w.prev_o.data(), lam, bx1 + q0, by1 + q0, bx2 + q0, by2 + q0, barea + q0,
                       as_b + q0, ao_b + q0, cs_ + q0, co_ + q0, bs + q0, bo + q0);
        std::copy(w.cur_s.begin(), w.cur_s.begin() + m, w.prev_s.begin());
        std::copy(w.cur_o.begin(), w.cur_o.begin() + m, w.prev_o.begin());
    }
    path_s.assign(k_len, 0);
    path_o.assign(k_len, 0);
    const auto first_max = [m](const std::vector<double>& v) {
        int64_t best = 0;
        for (int64_t q = 1; q < m; ++q)
            if (v[q] > v[best]) best = q;
        return best;
    };
    path_s[k_len - 1] = first_max(w.prev_s);
    path_o[k_len - 1] = first_max(w.prev_o);
    for (size_t t = k_len - 1; t > 0; --t) {
        path_s[t - 1] = w.back_s[(t - 1) * mp + path_s[t]];
        path_o[t - 1] = w.back_o[(t - 1) * mp + path_o[t]];
    }
    score_s = w.prev_s[path_s[k_len - 1]] / static_cast<double>(k_len - 1);
    score_o = w.prev_o[path_o[k_len - 1]] / static_cast<double>(k_len - 1);
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

// Steps 1-8 for one relation.
inline LinkOutput link_one(const LinkInput& in) {
    using namespace detail;
    LinkOutput out;
    const int64_t n = in.n, m = in.m;
    std::vector<double> areas(static_cast<size_t>(n * m));
    for (int64_t i = 0; i < n * m; ++i) {
        const double* bx = in.boxes + 4 * i;
        areas[i] = (bx[2] - bx[0] + 1.0) * (bx[3] - bx[1] + 1.0);
    }
    const double ten_r = 10.0 * (static_cast<double>(n) / static_cast<double>(in.num_frames));
    const double max_gap = std::max(1.0, ten_r);
    const int64_t min_len = std::max<int64_t>(1, static_cast<int64_t>(ten_r));
    std::vector<int64_t> cand, starts, sp, op;
    Scratch w;
    segments(in.beta, n, in.sigma, max_gap, cand, starts);
    bool found = false;
    double best = 0.0, ss = 0.0, os = 0.0;
    for (size_t g = 0; g + 1 < starts.size(); ++g) {
        const int64_t len = starts[g + 1] - starts[g];
        if (len <= min_len) continue;
        std::vector<int64_t> kept = keep_distinct(cand.data() + starts[g], len, in.frame_ids);
        if (kept.size() < 2) continue;
        viterbi_pair(in, areas.data(), kept, w, sp, ss, op, os);
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
            viterbi_pair(in, areas.data(), out.kept, w, out.sub_path, out.sub_score, out.obj_path, out.obj_score);
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
