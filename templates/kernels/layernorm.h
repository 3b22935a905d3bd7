// layernorm.h -- LayerNorm over the last axis in integers (hwgen/ops/layernorm.py, bit for bit).
//
// Per row of n codes, x = q - x_zero_point:  S1 = sum x and S2 = sum x^2 in one pass (exact);
// V = max(n*S2 - S1^2 + eps_int, 1);  1/sqrt(V) ~= r * 2^-(24 + e) from hwgen.tables.rsqrt_table on V's top
// 12 bits (V normalised by an even shift 2e, a priority encoder);  per element  c = n*x - S1,
// z = round_half_up(c * r * 2^-(24 + e - 16)) (the normalised value, 16 fraction bits),
// acc = z * gamma_mult[i] + beta_term[i],  y = sat(round(acc * 2^-shift) + out_zero_point).
// gamma_mult[i] = (gamma_i - zp) * m_gamma[i] and beta_term[i] = (beta_i - zp) * m_beta[i] fold the codes
// and the multipliers of hwgen.ops.common.weighted_sum into one per-channel constant each (an exact integer
// identity: one multiplier per element).  No division or square root at run time.
//
// struct config {
//   typedef ... in_t;  typedef ... out_t;
//   typedef ap_uint<20> rsqrt_t;                 // entries 2^24/sqrt(m), m in [1024, 4096)
//   static const unsigned n_rows, n;             // row-major [n_rows][n] per call
//   static const long long x_zero_point, eps_int;
//   static const int rsqrt_index_bits, rsqrt_frac, norm_frac;       // 12, 24, 16
//   static const rsqrt_t rsqrt_table[];          // 3072 entries
//   static const long long gamma_mult[], beta_term[];               // n each (beta_term all 0 without beta)
//   static const int shift;
//   static const long long out_zero_point;
//   static const ap_q_mode rounding;  static const ap_o_mode overflow;   // the output type's modes
// };
// hwgen::layernorm<config>(x, y);
#ifndef HWGEN_LAYERNORM_H
#define HWGEN_LAYERNORM_H

#include "hwgen_numerics.h"

namespace hwgen {

// Bit length of 0 < v < 2^63 (a priority encoder).
inline int bit_length63(i64 v) {
#pragma HLS INLINE
  int bl = 0;
BITS:
  for (int b = 0; b < 63; b++) {
#pragma HLS UNROLL
    if ((v >> b) != 0) bl = b + 1;
  }
  return bl;
}

// 1/sqrt(v) ~= r * 2^-(rsqrt_frac + e) for v > 0: v = m * 4^e (m in [2^(B-2), 2^B)), r = table[m - 2^(B-2)].
template <class CONFIG>
inline void layernorm_rsqrt(i64 v, i64& r, int& e) {
#pragma HLS INLINE
  int k2 = bit_length63(v) - CONFIG::rsqrt_index_bits;
  k2 += k2 & 1;  // round the shift up to even, as tables.RsqrtTable.lookup
  const i64 m = k2 >= 0 ? (v >> k2) : (v << -k2);
  r = raw(CONFIG::rsqrt_table[m - ((i64)1 << (CONFIG::rsqrt_index_bits - 2))]);
  e = k2 / 2;  // k2 even: exact
}

template <class CONFIG>
void layernorm(const typename CONFIG::in_t x[CONFIG::n_rows * CONFIG::n],
               typename CONFIG::out_t y[CONFIG::n_rows * CONFIG::n]) {
  typedef typename CONFIG::out_t out_t;
  typedef ap_int<elem<typename CONFIG::in_t>::bits + 1> xc_t;  // q - x_zero_point
  xc_t xc[CONFIG::n];
ROWS:
  for (unsigned r = 0; r < CONFIG::n_rows; r++) {
    const unsigned base = r * CONFIG::n;
    i64 s1 = 0, s2 = 0;
  MOMENTS:
    for (unsigned i = 0; i < CONFIG::n; i++) {
#pragma HLS PIPELINE II = 1
      const i64 v = raw(x[base + i]) - CONFIG::x_zero_point;
      xc[i] = (xc_t)v;
      s1 += v;
      s2 += v * v;
    }
    i64 var = (i64)CONFIG::n * s2 - s1 * s1 + CONFIG::eps_int;
    if (var < 1) var = 1;
    i64 rs;
    int e;
    layernorm_rsqrt<CONFIG>(var, rs, e);
    const int zshift = CONFIG::rsqrt_frac + e - CONFIG::norm_frac;
  NORMALISE:
    for (unsigned i = 0; i < CONFIG::n; i++) {
#pragma HLS PIPELINE II = 1
      const i64 c = (i64)CONFIG::n * xc[i].to_int64() - s1;
      const i64 z = shift_round<AP_RND>(c * rs, zshift);
      const i64 acc = z * CONFIG::gamma_mult[i] + CONFIG::beta_term[i];
      const i64 q = overflow<elem<out_t>::bits, elem<out_t>::is_signed, CONFIG::overflow>(
          shift_round<CONFIG::rounding>(acc, CONFIG::shift) + CONFIG::out_zero_point);
      y[base + i] = from_raw<out_t>(q);
    }
  }
}

}  // namespace hwgen

#endif  // HWGEN_LAYERNORM_H
