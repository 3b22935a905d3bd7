// movement.h -- transpose, slice, gather and split as one strided copy (no arithmetic, codes unchanged).
//
// The output is walked in row-major order over out_dims[0..rank-1]; the source element of output index
// (i0..i{rank-1}) is x[src_base + sum_a i_a * src_stride[a]]. Python (hwgen/ops/movement.py, emit())
// derives base and strides: a transpose permutes the input strides, a slice multiplies them by its step
// and offsets the base, a gather of one index drops an axis into the base. Counters replace division, so
// the address logic is a few adders per element and the loop runs at II=1.
//
// struct config {
//   typedef ... in_t; typedef ... out_t;   // the same numeric type (movement keeps it)
//   static const int rank;                  // 1..6 (unused trailing axes have dim 1)
//   static const int n_out;                 // product of out_dims
//   static const int out_dims[6];
//   static const int src_stride[6];
//   static const int src_base;
// };
// void strided_copy<config>(x[], y[n_out])
#ifndef HWGEN_MOVEMENT_H
#define HWGEN_MOVEMENT_H

#include "hwgen_numerics.h"

namespace hwgen {

template <class CONFIG_T>
void strided_copy(const typename CONFIG_T::in_t* x, typename CONFIG_T::out_t y[CONFIG_T::n_out]) {
#pragma HLS INLINE off
  int idx[6] = {0, 0, 0, 0, 0, 0};
#pragma HLS ARRAY_PARTITION variable = idx complete
  int src = CONFIG_T::src_base;
COPY:
  for (int o = 0; o < CONFIG_T::n_out; o++) {
#pragma HLS PIPELINE II = 1
    y[o] = x[src];
    // advance the innermost counter, carrying outwards (no division)
    for (int a = CONFIG_T::rank - 1; a >= 0; a--) {
      idx[a]++;
      src += CONFIG_T::src_stride[a];
      if (idx[a] < CONFIG_T::out_dims[a]) break;
      src -= CONFIG_T::src_stride[a] * CONFIG_T::out_dims[a];
      idx[a] = 0;
    }
  }
}

}  // namespace hwgen

#endif  // HWGEN_MOVEMENT_H
