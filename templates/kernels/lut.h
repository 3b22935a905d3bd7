// lut.h -- elementwise function by table (GELU, tanh, sigmoid, ...): hwgen/ops/lut.py, bit for bit.
//
// idx = q - qmin.  shift == 0 (inputs of <= 12 bits): y = table[idx], the output code itself.
// shift > 0 (wider inputs): i = idx >> shift, f = idx & (2^shift - 1); the table holds the output value with
// interp_frac extra fraction bits (zero point included) at every 2^shift-th code plus one knot past the end;
//   t = lo + floor((hi - lo) * f / 2^shift),  y = sat(round(t * 2^-interp_frac))   (out_q / out_o).
// The table is built in Python from the ONNX subgraph and written here verbatim; nothing is computed in C++.
//
// Configuration:
//   struct lut_config_N {
//     typedef ap_int<8> in_t;  typedef ap_int<8> out_t;  typedef ap_int<8> table_t;
//     static const unsigned n_in = 1088;      // elements per call
//     static const unsigned parallel = 1;     // elements per cycle (table read ports = parallel)
//     static const long long qmin = -128;     // smallest input code
//     static const int shift = 0;             // 0: exact table; > 0: interpolated
//     static const int interp_frac = 8;
//     static const unsigned table_entries = 256;
//     static const table_t table[256];
//     static const int out_bits = 8; static const bool out_signed = true;       // used when shift > 0
//     static const ap_q_mode out_q = AP_RND_CONV; static const ap_o_mode out_o = AP_SAT;
//   };
//   hwgen::lut<lut_config_N>(x, y);
#ifndef HWGEN_LUT_H
#define HWGEN_LUT_H

#include "hwgen_numerics.h"

#ifndef HWGEN_CODE_TRAITS
#define HWGEN_CODE_TRAITS
#include <ap_fixed.h>
namespace hwgen {
template <class T> struct code_traits;  // specialised for ap_int / ap_uint / ap_fixed / ap_ufixed
template <int W> struct code_traits<ap_int<W> > {
  static i64 get(const ap_int<W>& x) { return x.to_int64(); }
  static ap_int<W> make(i64 v) { return ap_int<W>(v); }
};
template <int W> struct code_traits<ap_uint<W> > {
  static i64 get(const ap_uint<W>& x) { return (i64)x.to_uint64(); }
  static ap_uint<W> make(i64 v) { return ap_uint<W>(v); }
};
template <int W, int I, ap_q_mode Q, ap_o_mode O, int N> struct code_traits<ap_fixed<W, I, Q, O, N> > {
  static i64 get(const ap_fixed<W, I, Q, O, N>& x) {
    ap_int<W> r;
    r.range(W - 1, 0) = x.range(W - 1, 0);
    return r.to_int64();
  }
  static ap_fixed<W, I, Q, O, N> make(i64 v) {
    ap_fixed<W, I, Q, O, N> r;
    r.range(W - 1, 0) = ap_int<W>(v).range(W - 1, 0);
    return r;
  }
};
template <int W, int I, ap_q_mode Q, ap_o_mode O, int N> struct code_traits<ap_ufixed<W, I, Q, O, N> > {
  static i64 get(const ap_ufixed<W, I, Q, O, N>& x) {
    ap_uint<W> r;
    r.range(W - 1, 0) = x.range(W - 1, 0);
    return (i64)r.to_uint64();
  }
  static ap_ufixed<W, I, Q, O, N> make(i64 v) {
    ap_ufixed<W, I, Q, O, N> r;
    r.range(W - 1, 0) = ap_uint<W>(v).range(W - 1, 0);
    return r;
  }
};
template <class T> inline i64 code_of(const T& x) { return code_traits<T>::get(x); }
template <class T> inline T from_code(i64 v) { return code_traits<T>::make(v); }
}  // namespace hwgen
#endif  // HWGEN_CODE_TRAITS

namespace hwgen {

// One element: input code -> output code.
template <class CONFIG>
inline i64 lut_eval(i64 q) {
#pragma HLS INLINE
  const i64 idx = q - CONFIG::qmin;
  if (CONFIG::shift == 0) return code_of(CONFIG::table[idx]);
  const int sh = CONFIG::shift > 0 ? CONFIG::shift : 1;  // (dead branch guard for shift == 0)
  const i64 i = idx >> sh;
  const i64 f = idx & (((i64)1 << sh) - 1);
  const i64 lo = code_of(CONFIG::table[i]);
  const i64 hi = code_of(CONFIG::table[i + 1]);
  const i64 t = lo + (((hi - lo) * f) >> sh);  // floor: AP_TRN
  return overflow<CONFIG::out_bits, CONFIG::out_signed, CONFIG::out_o>(
      shift_round<CONFIG::out_q>(t, CONFIG::interp_frac));
}

template <class CONFIG>
void lut(const typename CONFIG::in_t x[CONFIG::n_in], typename CONFIG::out_t y[CONFIG::n_in]) {
  static_assert(CONFIG::n_in % CONFIG::parallel == 0, "parallel must divide n_in");
elements:
  for (unsigned b = 0; b < CONFIG::n_in; b += CONFIG::parallel) {
#pragma HLS PIPELINE II = 1
  lanes:
    for (unsigned l = 0; l < CONFIG::parallel; l++) {
#pragma HLS UNROLL
      y[b + l] = from_code<typename CONFIG::out_t>(lut_eval<CONFIG>(code_of(x[b + l])));
    }
  }
}

}  // namespace hwgen

#endif  // HWGEN_LUT_H
