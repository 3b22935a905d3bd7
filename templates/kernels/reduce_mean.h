// reduce_mean.h -- y = requant(sum(x - zx) over the reduced axes), multiplier for s_x / count
// (hwgen/ops/reduce_mean.py: common.to_type(total, s_x / count, y)).
//
// The reduced axes must be contiguous: one sample is viewed as [n_outer][n_reduce][n_inner] and the output
// as [n_outer][n_inner] (keepdims does not change the flat layout).  Token pooling of [T][D] over T is
// n_outer = 1, n_reduce = T, n_inner = D; GlobalAveragePool of [C][H][W] is n_outer = C, n_reduce = H*W,
// n_inner = 1.  The integer sum is exact (accum_t holds count * max|x - zx|), so order is irrelevant.
//
// struct config {
//   typedef ... in_t; typedef ... out_t; typedef ... accum_t; typedef ... mult_t;
//   static const int n_outer, n_reduce, n_inner;
//   static const long long in_zero_point, m0, out_zero_point;
//   static const int shift;
//   static const ap_q_mode rounding; static const ap_o_mode overflow;   // output type's modes
// };
#ifndef HWGEN_REDUCE_MEAN_H
#define HWGEN_REDUCE_MEAN_H

#include "requant.h"

namespace hwgen {

template <class CONFIG_T>
void reduce_mean(const typename CONFIG_T::in_t x[CONFIG_T::n_outer * CONFIG_T::n_reduce * CONFIG_T::n_inner],
                 typename CONFIG_T::out_t y[CONFIG_T::n_outer * CONFIG_T::n_inner]) {
#pragma HLS INLINE off
  typedef typename CONFIG_T::in_t in_t;
  typedef typename CONFIG_T::accum_t accum_t;
  typedef ap_int<elem<in_t>::bits + 1> xc_t;
  static const int R = CONFIG_T::n_reduce;
  static const int I = CONFIG_T::n_inner;
  const typename CONFIG_T::mult_t m0 = CONFIG_T::m0;
OUTER:
  for (int o = 0; o < CONFIG_T::n_outer; o++) {
    accum_t acc[I];
  INIT:
    for (int j = 0; j < I; j++) {
#pragma HLS PIPELINE II = 1
      acc[j] = 0;
    }
  REDUCE:
    for (int r = 0; r < R; r++) {
      for (int j = 0; j < I; j++) {
#pragma HLS PIPELINE II = 1
        acc[j] += (xc_t)(raw(x[(o * R + r) * I + j]) - CONFIG_T::in_zero_point);
      }
    }
  WRITE:
    for (int j = 0; j < I; j++) {
#pragma HLS PIPELINE II = 1
      y[o * I + j] = requant_out<typename CONFIG_T::out_t, CONFIG_T::rounding, CONFIG_T::overflow>(
          acc[j], m0, CONFIG_T::shift, CONFIG_T::out_zero_point);
    }
  }
}

}  // namespace hwgen

#endif  // HWGEN_REDUCE_MEAN_H
