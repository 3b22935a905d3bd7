// requant.h -- requantisation helpers shared by the linear-family kernels, and the single-input
// type-conversion kernels (quantize between integer / fixed-point types, concat parts).
//
// Python counterparts (hwgen/ops/common.py):
//   requant_out  == common.apply_requant: overflow(shift_round(acc * m0, shift, Q) + zp) into OUT_T
//   sum_out      == the last step of common.weighted_sum: overflow(shift_round(acc, S, Q) + zp)
//   requant      == ops/quantize.py between integer / fixed types (common.to_type of centred codes)
//   concat_part  == one input of ops/movement.py Concat (requantised with common.to_type when its type
//                   differs from the output's, copied otherwise)
// Q / O are the *output tensor's* rounding / overflow modes (QType.rounding / QType.overflow), given by the
// config even for ap_int outputs, whose C++ type does not carry them.
#ifndef HWGEN_REQUANT_H
#define HWGEN_REQUANT_H

#include "hwgen_numerics.h"

namespace hwgen {

// acc * m0 at its exact width (ACC_T, M_T ap_int / ap_uint), rounded by `shift`, plus zp, fitted into
// OUT_T.
template <class OUT_T, ap_q_mode Q, ap_o_mode O, class ACC_T, class M_T>
inline OUT_T requant_out(const ACC_T& acc, const M_T& m0, int shift, i64 zp) {
#pragma HLS INLINE
  // signed x signed or signed x unsigned: A + M bits hold any product of the types; unsigned x unsigned
  // needs one more.  Capped at 64: the *values* always fit (m0 < 2^31 and |acc * m0| < 2^62 are checked
  // by common.apply_requant), even when a type is wider than its values (e.g. mult_t = ap_uint<32>).
  static const int PW = elem<ACC_T>::bits + elem<M_T>::bits + ((elem<ACC_T>::is_signed || elem<M_T>::is_signed) ? 0 : 1);
  typedef ap_int<(PW > 64 ? 64 : PW)> prod_t;
  const prod_t p = (prod_t)acc * (prod_t)m0;
  const i64 r = shift_round<Q>((i64)p.to_int64(), shift) + zp;
  return from_raw<OUT_T>(overflow<elem<OUT_T>::bits, elem<OUT_T>::is_signed, O>(r));
}

// overflow(shift_round(acc, shift) + zp) into OUT_T: the end of a weighted sum (multipliers already in acc).
template <class OUT_T, ap_q_mode Q, ap_o_mode O, class ACC_T>
inline OUT_T sum_out(const ACC_T& acc, int shift, i64 zp) {
#pragma HLS INLINE
  const i64 r = shift_round<Q>((i64)acc.to_int64(), shift) + zp;
  return from_raw<OUT_T>(overflow<elem<OUT_T>::bits, elem<OUT_T>::is_signed, O>(r));
}

// ---- broadcasting while walking an output in order ----
// The output is viewed as [outer][SIZE][INNER] and the operand as [SIZE] (broadcast over outer and
// inner): operand index = (i / INNER) % SIZE, kept with two counters instead of a divider.  Same shape as
// the output: INNER = 1, SIZE = n; a bias [C] over [T][C]: INNER = 1, SIZE = C; a column [T][1] over [T][C]:
// INNER = C, SIZE = T; a scalar: SIZE = 1.
template <int INNER, int SIZE>
struct bcast_iter {
  int rep, idx;
  bcast_iter() : rep(0), idx(0) {}
  int get() const { return idx; }
  void step() {
    if (++rep == INNER) {
      rep = 0;
      if (++idx == SIZE) idx = 0;
    }
  }
};

// ---- requant: y = requantise(x - in_zero_point) elementwise (ops/quantize.py, integer / fixed source) ----
// struct config {
//   typedef ... in_t; typedef ... out_t;          // element types (ap_int / ap_uint / ap_fixed / ap_ufixed)
//   typedef ... mult_t;                            // holds m0 (ap_uint<31>)
//   static const int n_elem;                       // elements per sample
//   static const long long in_zero_point, m0, out_zero_point;
//   static const int shift;
//   static const ap_q_mode rounding; static const ap_o_mode overflow;   // the output type's modes
// };
template <class CONFIG_T>
void requant(const typename CONFIG_T::in_t x[CONFIG_T::n_elem], typename CONFIG_T::out_t y[CONFIG_T::n_elem]) {
#pragma HLS INLINE off
  typedef typename CONFIG_T::in_t in_t;
  typedef ap_int<elem<in_t>::bits + 1> xc_t;  // code minus zero point
  const typename CONFIG_T::mult_t m0 = CONFIG_T::m0;
ELEM:
  for (int i = 0; i < CONFIG_T::n_elem; i++) {
#pragma HLS PIPELINE II = 1
    const xc_t c = (xc_t)(raw(x[i]) - CONFIG_T::in_zero_point);
    y[i] = requant_out<typename CONFIG_T::out_t, CONFIG_T::rounding, CONFIG_T::overflow>(
        c, m0, CONFIG_T::shift, CONFIG_T::out_zero_point);
  }
}

// ---- concat_part: write one concat input into its slice of the output ----
// The output is viewed as [n_outer][out_inner] (out_inner = the product of the output dims from the concat
// axis on); this input as [n_outer][in_inner], placed at columns [offset, offset + in_inner).  Call once per
// input.  With `convert` false the codes are copied (same type as the output); otherwise requantised like
// requant above (m0 / shift / in_zero_point from common.requant_params of the input's scale).
// struct config {
//   typedef ... in_t; typedef ... out_t; typedef ... mult_t;
//   static const int n_outer, in_inner, out_inner, offset;
//   static const bool convert;
//   static const long long in_zero_point, m0, out_zero_point;
//   static const int shift;
//   static const ap_q_mode rounding; static const ap_o_mode overflow;
// };
template <class CONFIG_T>
void concat_part(const typename CONFIG_T::in_t x[CONFIG_T::n_outer * CONFIG_T::in_inner],
                 typename CONFIG_T::out_t y[CONFIG_T::n_outer * CONFIG_T::out_inner]) {
#pragma HLS INLINE off
  typedef typename CONFIG_T::in_t in_t;
  typedef typename CONFIG_T::out_t out_t;
  typedef ap_int<elem<in_t>::bits + 1> xc_t;
  const typename CONFIG_T::mult_t m0 = CONFIG_T::m0;
OUTER:
  for (int o = 0; o < CONFIG_T::n_outer; o++) {
  INNER:
    for (int i = 0; i < CONFIG_T::in_inner; i++) {
#pragma HLS PIPELINE II = 1
      const in_t v = x[o * CONFIG_T::in_inner + i];
      out_t r;
      if (CONFIG_T::convert) {
        const xc_t c = (xc_t)(raw(v) - CONFIG_T::in_zero_point);
        r = requant_out<out_t, CONFIG_T::rounding, CONFIG_T::overflow>(c, m0, CONFIG_T::shift,
                                                                       CONFIG_T::out_zero_point);
      } else {
        r = from_raw<out_t>(raw(v));
      }
      y[o * CONFIG_T::out_inner + CONFIG_T::offset + i] = r;
    }
  }
}

}  // namespace hwgen

#endif  // HWGEN_REQUANT_H
