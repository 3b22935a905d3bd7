// mul.h -- elementwise products: y = requant((a - za) * (b - zb)) (hwgen/ops/mul.py, common.to_type with
// m0 / shift = common.requant_params(sa * sb [* |factor|], y)), and the one-operand form for Mul / Div by a
// constant number, whose factor is folded into m0 / shift (negative factor: `negate`).
//
// Operands broadcast against the output as in add.h (bcast_iter: index = (i / inner) % size).  Zero points
// and m0 / shift are arrays of n_chan entries indexed by the output's last-axis position when per_channel,
// else one-element arrays.
//
// struct config {
//   typedef ... a_t; typedef ... b_t; typedef ... out_t;   // element types
//   typedef ... zp_t; typedef ... mult_t; typedef ... shift_t;
//   static const int n_elem, n_chan;
//   static const int a_inner, a_size, b_inner, b_size;
//   static const bool per_channel;
//   static const bool negate;                  // mul_const only
//   static const long long out_zero_point;
//   static const ap_q_mode rounding; static const ap_o_mode overflow;   // output type's modes
// };
// mul<config>(a, b, y, za, zb, m0, shift);  mul_const<config>(a, y, za, m0, shift)
#ifndef HWGEN_MUL_H
#define HWGEN_MUL_H

#include "requant.h"

namespace hwgen {

template <class CONFIG_T>
void mul(const typename CONFIG_T::a_t a[CONFIG_T::a_size], const typename CONFIG_T::b_t b[CONFIG_T::b_size],
         typename CONFIG_T::out_t y[CONFIG_T::n_elem],
         const typename CONFIG_T::zp_t za[], const typename CONFIG_T::zp_t zb[],
         const typename CONFIG_T::mult_t m0[], const typename CONFIG_T::shift_t shift[]) {
#pragma HLS INLINE off
  typedef ap_int<elem<typename CONFIG_T::a_t>::bits + 1> ac_t;
  typedef ap_int<elem<typename CONFIG_T::b_t>::bits + 1> bc_t;
  typedef ap_int<elem<typename CONFIG_T::a_t>::bits + elem<typename CONFIG_T::b_t>::bits + 2> prod_t;
  bcast_iter<CONFIG_T::a_inner, CONFIG_T::a_size> ia;
  bcast_iter<CONFIG_T::b_inner, CONFIG_T::b_size> ib;
  bcast_iter<1, CONFIG_T::n_chan> ic;
ELEM:
  for (int i = 0; i < CONFIG_T::n_elem; i++) {
#pragma HLS PIPELINE II = 1
    const int c = CONFIG_T::per_channel ? ic.get() : 0;
    const ac_t ca = (ac_t)(raw(a[ia.get()]) - raw(za[c]));
    const bc_t cb = (bc_t)(raw(b[ib.get()]) - raw(zb[c]));
    const prod_t p = (prod_t)ca * cb;
    y[i] = requant_out<typename CONFIG_T::out_t, CONFIG_T::rounding, CONFIG_T::overflow>(
        p, m0[c], (int)shift[c], CONFIG_T::out_zero_point);
    ia.step();
    ib.step();
    ic.step();
  }
}

template <class CONFIG_T>
void mul_const(const typename CONFIG_T::a_t a[CONFIG_T::a_size], typename CONFIG_T::out_t y[CONFIG_T::n_elem],
               const typename CONFIG_T::zp_t za[], const typename CONFIG_T::mult_t m0[],
               const typename CONFIG_T::shift_t shift[]) {
#pragma HLS INLINE off
  typedef ap_int<elem<typename CONFIG_T::a_t>::bits + 2> ac_t;  // +1 for the zero point, +1 for negation
  bcast_iter<CONFIG_T::a_inner, CONFIG_T::a_size> ia;
  bcast_iter<1, CONFIG_T::n_chan> ic;
ELEM:
  for (int i = 0; i < CONFIG_T::n_elem; i++) {
#pragma HLS PIPELINE II = 1
    const int c = CONFIG_T::per_channel ? ic.get() : 0;
    ac_t v = (ac_t)(raw(a[ia.get()]) - raw(za[c]));
    if (CONFIG_T::negate) v = -v;
    y[i] = requant_out<typename CONFIG_T::out_t, CONFIG_T::rounding, CONFIG_T::overflow>(
        v, m0[c], (int)shift[c], CONFIG_T::out_zero_point);
    ia.step();
    ic.step();
  }
}

}  // namespace hwgen

#endif  // HWGEN_MUL_H
