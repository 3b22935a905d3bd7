// softmax.h -- "safe" softmax over the last axis in integers (hwgen/ops/softmax.py, bit for bit).
//
// Per row of `row` codes q:  d = max(q) - q;  e = EXP[min(d >> index_shift, exp_entries - 1)]  (a table of
// e^(-d*s) with 17 fraction bits built by hwgen.tables.exp_table, entry 0 == 2^17);  sum = sum(e) exactly;
// ONE integer division per row, recip = floor(2^R / sum);  p = (e * recip) >> (R - 24)  (probability with
// 24 fraction bits);  y = requantize(p, out_m0, out_shift, out_zero_point) into out_t.  The streaming
// attention kernel (attention.h) calls the same three steps (softmax_exp / softmax_recip / softmax_prob).
//
// struct config {
//   typedef ... in_t;            // input element (ap_int / ap_uint / ap_fixed / ap_ufixed)
//   typedef ... out_t;           // output element
//   typedef ap_uint<18> exp_t;   // table entry (<= 2^17)
//   typedef ap_uint<B> sum_t;    // holds row * 2^17
//   static const unsigned n_rows, row;                       // row-major [n_rows][row] per call
//   static const unsigned exp_entries;  static const int index_shift;
//   static const exp_t exp_table[];     // generated: const exp_t config::exp_table[N] = {...};
//   static const int recip_bits, prob_frac;                  // R (tables.recip_bits), 20
//   static const long long out_m0, out_zero_point;  static const int out_shift;
//   static const ap_q_mode rounding;  static const ap_o_mode overflow;   // the output type's modes
// };
// hwgen::softmax<config>(x, y);
#ifndef HWGEN_SOFTMAX_H
#define HWGEN_SOFTMAX_H

#include "hwgen_numerics.h"

namespace hwgen {

// e = EXP[min(d >> index_shift, exp_entries - 1)] for a difference d = row_max - q >= 0.
template <class CONFIG>
inline typename CONFIG::exp_t softmax_exp(i64 d) {
#pragma HLS INLINE
  i64 idx = d >> CONFIG::index_shift;
  if (idx > (i64)CONFIG::exp_entries - 1) idx = (i64)CONFIG::exp_entries - 1;
  return CONFIG::exp_table[idx];
}

// recip = floor(2^R / sum): the one divider of a row.  sum >= 2^17 (the row max maps to entry 0 == 2^17),
// so recip < 2^(R-16).
template <class CONFIG>
inline u64 softmax_recip(typename CONFIG::sum_t sum) {
#pragma HLS INLINE
  typedef ap_uint<CONFIG::recip_bits + 1> num_t;
  const num_t num = num_t(1) << CONFIG::recip_bits;
  const num_t q = num / sum;
  return (u64)q.to_uint64();
}

// p = (e * recip) >> (R - prob_frac), requantised: returns the output code.
template <class CONFIG>
inline i64 softmax_prob(typename CONFIG::exp_t e, u64 recip) {
#pragma HLS INLINE
  typedef typename CONFIG::out_t out_t;
  const u64 prob = ((u64)e.to_uint64() * recip) >> (CONFIG::recip_bits - CONFIG::prob_frac);
  return requantize<elem<out_t>::bits, elem<out_t>::is_signed, CONFIG::rounding, CONFIG::overflow>(
      (i64)prob, CONFIG::out_m0, CONFIG::out_shift, CONFIG::out_zero_point);
}

template <class CONFIG>
void softmax(const typename CONFIG::in_t x[CONFIG::n_rows * CONFIG::row],
             typename CONFIG::out_t y[CONFIG::n_rows * CONFIG::row]) {
  typedef typename CONFIG::exp_t exp_t;
  typedef typename CONFIG::sum_t sum_t;
  typedef typename CONFIG::in_t in_t;
  in_t xbuf[CONFIG::row];
  exp_t ebuf[CONFIG::row];
ROWS:
  for (unsigned r = 0; r < CONFIG::n_rows; r++) {
    const unsigned base = r * CONFIG::row;
    // pass 1: read the row, find its max
    i64 mx = raw(x[base]);
  FIND_MAX:
    for (unsigned j = 0; j < CONFIG::row; j++) {
#pragma HLS PIPELINE II = 1
      const in_t v = x[base + j];
      xbuf[j] = v;
      if (raw(v) > mx) mx = raw(v);
    }
    // pass 2: table exp and exact integer sum
    sum_t sum = 0;
  EXP_SUM:
    for (unsigned j = 0; j < CONFIG::row; j++) {
#pragma HLS PIPELINE II = 1
      const exp_t e = softmax_exp<CONFIG>(mx - raw(xbuf[j]));
      ebuf[j] = e;
      sum += e;
    }
    const u64 recip = softmax_recip<CONFIG>(sum);  // one division per row
    // pass 3: probabilities, requantised
  NORMALISE:
    for (unsigned j = 0; j < CONFIG::row; j++) {
#pragma HLS PIPELINE II = 1
      y[base + j] = from_raw<typename CONFIG::out_t>(softmax_prob<CONFIG>(ebuf[j], recip));
    }
  }
}

}  // namespace hwgen

#endif  // HWGEN_SOFTMAX_H
