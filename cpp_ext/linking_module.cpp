// pybind11 bindings of the vrgv linking core: `vrgv._linking_cpp.link` and `.link_many`.
// Takes NumPy buffers only (float64 C-contiguous, int64 frame ids), releases the GIL while computing, and
// spreads link_many's relations over std::threads. Input validation with readable messages happens in
// vrgv.linking (Python); the checks here only guard memory safety.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cmath>
#include <atomic>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "linking_core.hpp"

namespace py = pybind11;
using f64 = py::array_t<double, py::array::c_style | py::array::forcecast>;
using i64 = py::array_t<int64_t, py::array::c_style | py::array::forcecast>;

namespace {

void require(bool ok, const std::string& msg) {
    if (!ok) throw std::invalid_argument("vrgv._linking_cpp: " + msg);
}

template <typename T>
py::array_t<T> to_array(const std::vector<T>& v) {
    py::array_t<T> a(static_cast<py::ssize_t>(v.size()));
    std::copy(v.begin(), v.end(), a.mutable_data());
    return a;
}

py::array_t<double> to_boxes(const std::vector<double>& v) {
    py::array_t<double> a({static_cast<py::ssize_t>(v.size() / 4), static_cast<py::ssize_t>(4)});
    std::copy(v.begin(), v.end(), a.mutable_data());
    return a;
}

py::object to_python(const vrgv::LinkOutput& o) {
    if (o.status == 0) return py::none();
    return py::make_tuple(to_array(o.kept), to_array(o.sub_path), to_array(o.obj_path), o.sub_score, o.obj_score,
                          o.status == 2, o.start_fid, o.end_fid, to_boxes(o.sub_boxes), to_boxes(o.obj_boxes));
}

struct Shapes {
    int64_t r, n, m;
};

Shapes check(const f64& boxes, const f64& alpha_s, const f64& alpha_o, const f64& beta, const i64& fids,
             int64_t num_frames, bool many) {
    require(boxes.ndim() == 3 && boxes.shape(2) == 4, "boxes must be [N, M, 4]");
    const int64_t n = boxes.shape(0), m = boxes.shape(1);
    require(n >= 1 && m >= 1, "boxes must hold at least one frame and one region");
    const int64_t r = many ? (alpha_s.ndim() == 3 ? alpha_s.shape(0) : -1) : 1;
    require(r >= 0, "alpha_s must be [R, N, M]");
    for (const f64* a : {&alpha_s, &alpha_o}) {
        if (many)
            require(a->ndim() == 3 && a->shape(0) == r && a->shape(1) == n && a->shape(2) == m, "alpha must be [R, N, M]");
        else
            require(a->ndim() == 2 && a->shape(0) == n && a->shape(1) == m, "alpha must be [N, M]");
    }
    if (many)
        require(beta.ndim() == 2 && beta.shape(0) == r && beta.shape(1) == n, "beta must be [R, N]");
    else
        require(beta.ndim() == 1 && beta.shape(0) == n, "beta must be [N]");
    require(fids.ndim() == 1 && fids.shape(0) == n, "frame_ids must be [N]");
    require(num_frames >= 1, "num_frames must be >= 1");
    const int64_t* f = fids.data();
    for (int64_t i = 1; i < n; ++i) require(f[i] >= f[i - 1], "frame_ids must be non-decreasing");
    return {r, n, m};
}

py::object link_one_py(const f64& boxes, const f64& alpha_s, const f64& alpha_o, const f64& beta, const i64& frame_ids,
                int64_t num_frames, double sigma, double iou_weight, bool strict) {
    const Shapes s = check(boxes, alpha_s, alpha_o, beta, frame_ids, num_frames, false);
    vrgv::LinkInput in{boxes.data(), alpha_s.data(), alpha_o.data(), beta.data(), frame_ids.data(),
                       s.n, s.m, num_frames, sigma, iou_weight, strict};
    vrgv::LinkOutput out;
    {
        py::gil_scoped_release release;
        out = vrgv::link_one(in);
    }
    return to_python(out);
}

py::list link_many_py(const f64& boxes, const f64& alpha_s, const f64& alpha_o, const f64& beta, const i64& frame_ids,
                   int64_t num_frames, double sigma, double iou_weight, bool strict, int threads) {
    const Shapes s = check(boxes, alpha_s, alpha_o, beta, frame_ids, num_frames, true);
    std::vector<vrgv::LinkOutput> outs(static_cast<size_t>(s.r));
    {
        py::gil_scoped_release release;
        vrgv::detail::Geometry geo;  // the video's boxes, shared read-only by all relations and threads
        geo.fill_all(boxes.data(), s.n, s.m, vrgv::detail::kLanes);
        const auto run = [&](int64_t k) {
            vrgv::LinkInput in{boxes.data(), alpha_s.data() + k * s.n * s.m, alpha_o.data() + k * s.n * s.m,
                               beta.data() + k * s.n, frame_ids.data(), s.n, s.m, num_frames, sigma, iou_weight,
                               strict};
            outs[static_cast<size_t>(k)] = vrgv::link_one(in, &geo);
        };
        int64_t workers = threads > 0 ? threads : static_cast<int64_t>(std::thread::hardware_concurrency());
        workers = std::max<int64_t>(1, std::min<int64_t>(workers, s.r));
        if (workers == 1) {
            for (int64_t k = 0; k < s.r; ++k) run(k);
        } else {
            std::atomic<int64_t> next{0};
            std::vector<std::thread> pool;
            for (int64_t t = 0; t < workers; ++t)
                pool.emplace_back([&] {
                    for (int64_t k = next++; k < s.r; k = next++) run(k);
                });
            for (auto& th : pool) th.join();
        }
    }
    py::list result;
    for (const auto& o : outs) result.append(to_python(o));
    return result;
}

// x - x is 0 for finite x and NaN for NaN/inf; the integer AND-reduction vectorises (std::isfinite does not).
VRGV_CLONES bool finite_span(const double* __restrict d, py::ssize_t n) {
    int ok = 1;
    for (py::ssize_t i = 0; i < n; ++i) ok &= static_cast<int>((d[i] - d[i]) == 0.0);
    return ok != 0;
}

VRGV_CLONES bool ordered_span(const double* __restrict d, py::ssize_t n_boxes) {
    int ok = 1;
    for (py::ssize_t i = 0; i < n_boxes; ++i)
        ok &= static_cast<int>(d[4 * i + 2] >= d[4 * i]) & static_cast<int>(d[4 * i + 3] >= d[4 * i + 1]);
    return ok != 0;
}

bool all_finite(const f64& a) { return finite_span(a.data(), a.size()); }

// The common case of vrgv.linking's checks in one call (the caller has checked dtypes and shapes): every value
// finite, x2 >= x1 and y2 >= y1, frame ids non-decreasing and within [0, num_frames). False sends the caller to
// its detailed checks, which name the problem.
bool inputs_ok(const f64& boxes, const f64& alpha_s, const f64& alpha_o, const f64& beta, const i64& fids,
               int64_t num_frames) {
    if (!finite_span(boxes.data(), boxes.size()) || !finite_span(alpha_s.data(), alpha_s.size()) ||
        !finite_span(alpha_o.data(), alpha_o.size()) || !finite_span(beta.data(), beta.size()))
        return false;
    if (!ordered_span(boxes.data(), boxes.size() / 4)) return false;
    const int64_t* f = fids.data();
    const py::ssize_t n = fids.size();
    if (n < 1 || f[0] < 0 || f[n - 1] >= num_frames) return false;
    int ok = 1;
    for (py::ssize_t i = 1; i < n; ++i) ok &= static_cast<int>(f[i] >= f[i - 1]);
    return ok != 0;
}

bool corners_ordered(const f64& boxes) {
    require(boxes.ndim() >= 1 && boxes.shape(boxes.ndim() - 1) == 4, "boxes must end in a 4-axis");
    return ordered_span(boxes.data(), boxes.size() / 4);
}

}  // namespace

PYBIND11_MODULE(_linking_cpp, mod) {
    mod.doc() = "vrgv linking core (thresholding, Viterbi, interpolation) in C++; see vrgv.linking.";
    mod.def("link", &link_one_py, py::arg("boxes"), py::arg("alpha_s"), py::arg("alpha_o"), py::arg("beta"),
            py::arg("frame_ids"), py::arg("num_frames"), py::arg("sigma"), py::arg("iou_weight"), py::arg("strict"),
            "Link one relation; returns None or (kept, sub_path, obj_path, sub_score, obj_score, fallback, "
            "start_fid, end_fid, sub_boxes, obj_boxes).");
    mod.def("link_many", &link_many_py, py::arg("boxes"), py::arg("alpha_s"), py::arg("alpha_o"), py::arg("beta"),
            py::arg("frame_ids"), py::arg("num_frames"), py::arg("sigma"), py::arg("iou_weight"), py::arg("strict"),
            py::arg("threads") = 0, "Link R relations of one video (alpha [R,N,M], beta [R,N]) on worker threads.");
    mod.def(
        "_set_screen",
        [](bool on) {
#ifdef VRGV_SCREEN_AVX512
            return vrgv::detail::screen_enabled.exchange(on);
#else
            (void)on;
            return false;
#endif
        },
        py::arg("on"),
        "Switch the AVX-512 division-free screen of the Viterbi step on or off (for tests and A/B timing; results "
        "are identical either way); returns the previous setting.");
    mod.def("screen_active", []() { return vrgv::detail::screen_available(); },
            "True when the Viterbi step screens pairs without dividing (AVX-512 CPU, not switched off).");
    mod.def("all_finite", &all_finite, py::arg("array"), "True when no element is NaN or infinite (one pass).");
    mod.def("corners_ordered", &corners_ordered, py::arg("boxes"), "True when x2 >= x1 and y2 >= y1 for all boxes.");
    mod.def("inputs_ok", &inputs_ok, py::arg("boxes"), py::arg("alpha_s"), py::arg("alpha_o"), py::arg("beta"),
            py::arg("frame_ids"), py::arg("num_frames"),
            "All of vrgv.linking's value checks in one pass (finite, ordered corners, frame ids); False: look closer.");
}
