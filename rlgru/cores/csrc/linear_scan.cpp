// The diagonal linear recurrence h_t = a_t * h_{t-1} + b_t, forward and backward, for CPU (rlgru.cores.scan).
//
// Why a kernel: minGRU and LRU train with this scan, and at RL sizes (a few envs, tens of units, 32-step lanes)
// a step of it is a few hundred multiply-adds, so running it as one PyTorch op per step costs 50-100x the
// arithmetic in dispatch. One call here loops over time with the state in cache, in any real or complex dtype
// (complex for LRU), and the backward is the reverse scan g_t = dout_t + conj(a_{t+1}) g_{t+1},
// da_t = g_t conj(h_{t-1}), dh0 = conj(a_0) g_0 (PyTorch's conjugate-Wirtinger convention).

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <c10/util/complex.h>
#include <torch/library.h>

#include <cstdint>
#include <optional>
#include <tuple>

namespace rlgru_linear_scan {
namespace {

template <typename T>
inline T conj(T x) {
  return x;
}
template <typename T>
inline c10::complex<T> conj(c10::complex<T> x) {
  return c10::complex<T>(x.real(), -x.imag());
}

void check(const at::Tensor& a, const at::Tensor& b, const at::Tensor& h0) {
  TORCH_CHECK(b.device().is_cpu() && a.device().is_cpu() && h0.device().is_cpu(), "linear scan: CPU tensors only");
  TORCH_CHECK(b.dim() >= 2 && a.sizes() == b.sizes(), "linear scan: a and b must be [T, ...] of one shape");
  TORCH_CHECK(h0.numel() == b.numel() / b.size(0), "linear scan: h0 must hold one step of b");
  TORCH_CHECK(a.scalar_type() == b.scalar_type() && h0.scalar_type() == b.scalar_type(),
              "linear scan: a, b and h0 must share one dtype");
}

at::Tensor forward(const at::Tensor& a_in, const at::Tensor& b_in, const at::Tensor& h0_in) {
  check(a_in, b_in, h0_in);
  const auto a = a_in.contiguous(), b = b_in.contiguous(), h0 = h0_in.contiguous();
  auto out = at::empty_like(b, at::MemoryFormat::Contiguous);
  const int64_t steps = b.size(0), width = b.numel() / steps;
  AT_DISPATCH_FLOATING_AND_COMPLEX_TYPES(b.scalar_type(), "linear_scan_forward", [&] {
    const scalar_t* ap = a.data_ptr<scalar_t>();
    const scalar_t* bp = b.data_ptr<scalar_t>();
    const scalar_t* prev = h0.data_ptr<scalar_t>();
    scalar_t* hp = out.data_ptr<scalar_t>();
    for (int64_t t = 0; t < steps; ++t) {
      const scalar_t* at_ = ap + t * width;
      const scalar_t* bt = bp + t * width;
      scalar_t* ht = hp + t * width;
      for (int64_t i = 0; i < width; ++i) ht[i] = at_[i] * prev[i] + bt[i];
      prev = ht;
    }
  });
  return out;
}

// Returns (db = g, da or empty, dh0 or empty); h is forward's output.
std::tuple<at::Tensor, at::Tensor, at::Tensor> backward(const at::Tensor& a_in, const at::Tensor& grad_in,
                                                        const at::Tensor& h_in, const at::Tensor& h0_in,
                                                        bool need_a, bool need_h0) {
  check(a_in, grad_in, h0_in);
  const auto a = a_in.contiguous(), grad = grad_in.contiguous(), h = h_in.contiguous(), h0 = h0_in.contiguous();
  auto g = at::empty_like(grad, at::MemoryFormat::Contiguous);
  auto da = need_a ? at::empty_like(grad, at::MemoryFormat::Contiguous) : at::empty({0}, grad.options());
  auto dh0 = need_h0 ? at::empty_like(h0, at::MemoryFormat::Contiguous) : at::empty({0}, grad.options());
  const int64_t steps = grad.size(0), width = grad.numel() / steps;
  AT_DISPATCH_FLOATING_AND_COMPLEX_TYPES(grad.scalar_type(), "linear_scan_backward", [&] {
    const scalar_t* ap = a.data_ptr<scalar_t>();
    const scalar_t* dp = grad.data_ptr<scalar_t>();
    const scalar_t* hp = h.data_ptr<scalar_t>();
    const scalar_t* h0p = h0.data_ptr<scalar_t>();
    scalar_t* gp = g.data_ptr<scalar_t>();
    scalar_t* dap = need_a ? da.data_ptr<scalar_t>() : nullptr;
    for (int64_t t = steps - 1; t >= 0; --t) {
      scalar_t* gt = gp + t * width;
      const scalar_t* dt = dp + t * width;
      if (t == steps - 1) {
        for (int64_t i = 0; i < width; ++i) gt[i] = dt[i];
      } else {
        const scalar_t* a_next = ap + (t + 1) * width;
        const scalar_t* g_next = gt + width;
        for (int64_t i = 0; i < width; ++i) gt[i] = dt[i] + conj(a_next[i]) * g_next[i];
      }
      if (dap != nullptr) {
        const scalar_t* prev = t == 0 ? h0p : hp + (t - 1) * width;
        scalar_t* dat = dap + t * width;
        for (int64_t i = 0; i < width; ++i) dat[i] = gt[i] * conj(prev[i]);
      }
    }
    if (need_h0) {
      scalar_t* dh0p = dh0.data_ptr<scalar_t>();
      for (int64_t i = 0; i < width; ++i) dh0p[i] = conj(ap[i]) * gp[i];
    }
  });
  return {g, da, dh0};
}

}  // namespace
}  // namespace rlgru_linear_scan

TORCH_LIBRARY(rlgru_linear_scan, m) {
  m.def("forward(Tensor a, Tensor b, Tensor h0) -> Tensor", &rlgru_linear_scan::forward);
  m.def("backward(Tensor a, Tensor grad, Tensor h, Tensor h0, bool need_a, bool need_h0) -> (Tensor, Tensor, Tensor)",
        &rlgru_linear_scan::backward);
}
