// lut.h -- elementwise function by table (GELU, tanh, sigmoid, ...): hwgen/ops/lut.py, bit for bit.
//
// idx = q - qmin.  shift == 0 (inputs of <= 12 bits): y = table[idx], the output code itself.
// shift > 0 (wider inputs): i = idx >> shift, f = idx & (2^shift - 1); the table holds the function at every
// 2^shift-th code (plus one knot past the end) with interp_frac extra fraction bits, zero point included:
//   t = lo + floor((hi - lo) * f / 2^shift),   y = sat(round(t * 2^-interp_frac))   (rounding / overflow).
// The table comes from Lut.params() (the ONNX subgraph evaluated in Python); nothing is computed in C++.
//
// struct config {
//   typedef ... in_t;  typedef ... out_t;  typedef ap_int<B> table_t;
//   static const unsigned n_in;          // elements per call
//   static const unsigned parallel;      // elements per cycle (divides n_in; needs `parallel` table ports)
//   static const long long qmin;         // smallest input code
//   static const int shift, interp_frac; // 0: exact table; > 0: interpolated (interp_frac = 8)
//   static const unsigned table_entries;
//   static const table_t table[];
//   static const ap_q_mode rounding;  static const ap_o_mode overflow;   // output type's modes (shift > 0)
// };
// hwgen::lut<config>(x, y);
// hwgen::lut_rows<config>(x, y, n);   // the first n elements only (n a multiple of parallel)
#ifndef HWGEN_LUT_H
#define HWGEN_LUT_H

#include "hwgen_numerics.h"

namespace hwgen {

// One element: input code -> output code.
template <class CONFIG>
inline i64 lut_eval(i64 q) {
#pragma HLS INLINE
  typedef typename CONFIG::out_t out_t;
  const i64 idx = q - CONFIG::qmin;
  if (CONFIG::shift == 0) return raw(CONFIG::table[idx]);
  const int sh = CONFIG::shift > 0 ? CONFIG::shift : 1;  // (guard for the dead branch when shift == 0)
  const i64 i = idx >> sh;
  const i64 f = idx & (((i64)1 << sh) - 1);
  const i64 lo = raw(CONFIG::table[i]);
  const i64 hi = raw(CONFIG::table[i + 1]);
  const i64 t = lo + (((hi - lo) * f) >> sh);  // floor (AP_TRN)
  return overflow<elem<out_t>::bits, elem<out_t>::is_signed, CONFIG::overflow>(
      shift_round<CONFIG::rounding>(t, CONFIG::interp_frac));
}

template <class CONFIG>
void lut(const typename CONFIG::in_t x[CONFIG::n_in], typename CONFIG::out_t y[CONFIG::n_in]) {
  static_assert(CONFIG::n_in % CONFIG::parallel == 0, "parallel must divide n_in");
ELEMENTS:
  for (unsigned b = 0; b < CONFIG::n_in; b += CONFIG::parallel) {
#pragma HLS PIPELINE II = 1
  LANES:
    for (unsigned l = 0; l < CONFIG::parallel; l++) {
#pragma HLS UNROLL
      y[b + l] = from_raw<typename CONFIG::out_t>(lut_eval<CONFIG>(raw(x[b + l])));
    }
  }
}

// The first n elements only (n <= n_in, a multiple of `parallel`; given at run time): a MoE expert's
// activation on the tokens routed to it.
template <class CONFIG>
void lut_rows(const typename CONFIG::in_t x[CONFIG::n_in], typename CONFIG::out_t y[CONFIG::n_in], unsigned n) {
ELEMENTS:
  for (unsigned b = 0; b < n; b += CONFIG::parallel) {
#pragma HLS LOOP_TRIPCOUNT min = 0 max = CONFIG::n_in / CONFIG::parallel
#pragma HLS PIPELINE II = 1
  LANES:
    for (unsigned l = 0; l < CONFIG::parallel; l++) {
#pragma HLS UNROLL
      y[b + l] = from_raw<typename CONFIG::out_t>(lut_eval<CONFIG>(raw(x[b + l])));
    }
  }
}

}  // namespace hwgen

#endif  // HWGEN_LUT_H
