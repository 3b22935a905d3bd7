// layernorm.h -- LayerNorm over the last axis in integers (hwgen/ops/layernorm.py, bit for bit).
//
// Per row of n codes, x = q - x_zp:  S1 = sum x, S2 = sum x^2 (exact, one pass);  V = max(n*S2 - S1^2 +
// eps_int, 1);  1/sqrt(V) ~= r * 2^-(24 + e) from a Python-built table on V's top 12 bits (V normalised by
// an even shift 2e);  then per element  c = n*x - S1,  z = round_half_up(c * r * 2^-(24 + e - 16))
// (the normalised value, 16 fraction bits),  acc = z * gamma_mult[i] + beta_term[i],  y = sat(round(acc *
// 2^-shift) + out_zp).  gamma_mult[i] = (gamma_i - zp_g) * m_g[i] and beta_term[i] = (beta_i - zp_b) * m_b[i]
// are the per-channel products of codes and multipliers of hwgen.ops.common.sum_params, folded by the
// generator into one constant each (an exact integer identity: one multiplier per element in hardware).
//
// Configuration:
//   struct layernorm_config_N {
//     typedef ap_int<8> in_t;  typedef ap_int<8> out_t;
//     typedef ap_uint<20> rsqrt_t;                    // table entries 2^24/sqrt(m), m in [1024, 4096)
//     static const unsigned n_rows = 17, n = 32;
//     static const long long x_zp = 14, eps_int = 28;
//     static const int rsqrt_index_bits = 12, rsqrt_frac = 24, norm_frac = 16;
//     static const rsqrt_t rsqrt_table[3072];
//     static const long long gamma_mult[32], beta_term[32];
//     static const int shift = 27;
//     static const int out_bits = 8; static const bool out_signed = true;
//     static const ap_q_mode out_q = AP_RND_CONV; static const ap_o_mode out_o = AP_SAT;
//     static const long long out_zp = 14;
//   };
//   hwgen::layernorm<layernorm_config_N>(x, y);   // x, y: row-major [n_rows * n]
#ifndef HWGEN_LAYERNORM_H
#define HWGEN_LAYERNORM_H

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

// Bit length of v > 0 (a priority encoder over 63 bits).
inline int bit_length_u63(i64 v) {
#pragma HLS INLINE
  int bl = 0;
bits:
  for (int b = 0; b < 63; b++) {
#pragma HLS UNROLL
    if ((v >> b) != 0) bl = b + 1;
  }
  return bl;
}

// 1/sqrt(v) ~= r * 2^-(frac + e) for v > 0: v = m * 4^e with m in [2^(B-2), 2^B), r = table[m - 2^(B-2)].
template <class CONFIG>
inline void layernorm_rsqrt(i64 v, i64& r, int& e) {
#pragma HLS INLINE
  int k2 = bit_length_u63(v) - CONFIG::rsqrt_index_bits;
  k2 += k2 & 1;  // even shift (toward +inf), as tables.RsqrtTable.lookup
  const i64 m = k2 >= 0 ? (v >> k2) : (v << -k2);
  r = (i64)CONFIG::rsqrt_table[m - ((i64)1 << (CONFIG::rsqrt_index_bits - 2))].to_uint64();
  e = k2 / 2;  // k2 is even: exact
}

template <class CONFIG>
void layernorm(const typename CONFIG::in_t x[CONFIG::n_rows * CONFIG::n],
               typename CONFIG::out_t y[CONFIG::n_rows * CONFIG::n]) {
  i64 xc[CONFIG::n];
rows:
  for (unsigned r = 0; r < CONFIG::n_rows; r++) {
    const unsigned base = r * CONFIG::n;
    // pass 1: S1 and S2 together (exact integers)
    i64 s1 = 0, s2 = 0;
  moments:
    for (unsigned i = 0; i < CONFIG::n; i++) {
#pragma HLS PIPELINE II = 1
      const i64 v = code_of(x[base + i]) - CONFIG::x_zp;
      xc[i] = v;
      s1 += v;
      s2 += v * v;
    }
    i64 var = (i64)CONFIG::n * s2 - s1 * s1 + CONFIG::eps_int;
    if (var < 1) var = 1;
    i64 rs;
    int e;
    layernorm_rsqrt<CONFIG>(var, rs, e);
    const int zshift = CONFIG::rsqrt_frac + e - CONFIG::norm_frac;
    // pass 2: normalise, scale, shift, round once
  normalise:
    for (unsigned i = 0; i < CONFIG::n; i++) {
#pragma HLS PIPELINE II = 1
      const i64 c = (i64)CONFIG::n * xc[i] - s1;
      const i64 z = shift_round<AP_RND>(c * rs, zshift);
      const i64 acc = z * CONFIG::gamma_mult[i] + CONFIG::beta_term[i];
      const i64 q = overflow<CONFIG::out_bits, CONFIG::out_signed, CONFIG::out_o>(
          shift_round<CONFIG::out_q>(acc, CONFIG::shift) + CONFIG::out_zp);
      y[base + i] = from_code<typename CONFIG::out_t>(q);
    }
  }
}

}  // namespace hwgen

#endif  // HWGEN_LAYERNORM_H
