// matmul.h -- y = requant((a - za) @ (b - zb)) for two activations (Q*K^T, P*V): hwgen/ops/matmul.py.
//
// One sample holds n_batch independent products (the leading dims, e.g. heads): a [n_batch][M][K],
// b [n_batch][K][N], y [n_batch][M][N], row-major.  An operand whose leading dims are all 1 while the
// other's are not is broadcast (a_bcast / b_bcast).  Runs linear.h's tiled core with b in the weight role
// (its zero point subtracted as each tile is loaded), no bias, one per-tensor multiplier:
// m0 / shift = MatMul.params() (common.requant_params(sa * sb, y)).  accum_t must hold
// max|a - za| * max|b - zb| * K (ops/matmul.py has no acc_bits entry; derive it like linear's).
//
// struct config {
//   typedef ... a_t; typedef ... b_t; typedef ... out_t;     // element types
//   typedef ... accum_t;  typedef ... mult_t;  typedef ... shift_t;
//   static const int n_batch, n_rows, n_inner, n_cols;        // n_batch x (M x K) @ (K x N)
//   static const bool a_bcast, b_bcast;
//   static const int tile_in, tile_out, n_lanes;              // knobs, as in linear.h
//   static const long long a_zero_point, b_zero_point, m0, out_zero_point;
//   static const int shift;
//   static const ap_q_mode rounding; static const ap_o_mode overflow;   // output type's modes
// };
#ifndef HWGEN_MATMUL_H
#define HWGEN_MATMUL_H

#include "linear.h"

namespace hwgen {

// linear.h's view of a matmul config.
template <class C>
struct matmul_core_cfg {
  typedef typename C::a_t in_t;
  typedef typename C::b_t weight_t;
  typedef ap_int<2> bias_t;  // unused (no bias)
  typedef typename C::accum_t accum_t;
  typedef typename C::mult_t mult_t;
  typedef typename C::shift_t shift_t;
  typedef typename C::out_t out_t;
  static const int n_rows = C::n_rows;
  static const int n_in = C::n_inner;
  static const int n_out = C::n_cols;
  static const int tile_in = C::tile_in;
  static const int tile_out = C::tile_out;
  static const int n_lanes = C::n_lanes;
  static const long long x_zero_point = C::a_zero_point;
  static const long long out_zero_point = C::out_zero_point;
  static const ap_q_mode rounding = C::rounding;
  static const ap_o_mode overflow = C::overflow;
};

template <class CONFIG_T>
void matmul(const typename CONFIG_T::a_t a[CONFIG_T::n_batch * CONFIG_T::n_rows * CONFIG_T::n_inner],
            const typename CONFIG_T::b_t b[CONFIG_T::n_batch * CONFIG_T::n_inner * CONFIG_T::n_cols],
            typename CONFIG_T::out_t y[CONFIG_T::n_batch * CONFIG_T::n_rows * CONFIG_T::n_cols]) {
#pragma HLS INLINE off
  typedef matmul_core_cfg<CONFIG_T> core;
  static const int A_STRIDE = CONFIG_T::a_bcast ? 0 : CONFIG_T::n_rows * CONFIG_T::n_inner;
  static const int B_STRIDE = CONFIG_T::b_bcast ? 0 : CONFIG_T::n_inner * CONFIG_T::n_cols;
  const typename CONFIG_T::mult_t m0[1] = {CONFIG_T::m0};
  const typename CONFIG_T::shift_t shift[1] = {CONFIG_T::shift};
  const typename core::bias_t no_bias[1] = {0};
BATCH:
  for (int t = 0; t < CONFIG_T::n_batch; t++) {
    gemm_tiled<core, rows_addr, CONFIG_T::b_zero_point, false, false>(
        a + t * A_STRIDE, y + t * CONFIG_T::n_rows * CONFIG_T::n_cols, b + t * B_STRIDE, no_bias, m0, shift);
  }
}

}  // namespace hwgen

#endif  // HWGEN_MATMUL_H
