// add.h -- weighted sums: y = round(sum_t m_t * (x_t - z_t), S) + zy, saturated (hwgen/ops/add.py through
// common.weighted_sum / common.sum_params): residual adds, bias and position-embedding adds, Sub.
//
// Two operands a and b, each broadcast against the output with bcast_iter (requant.h): operand index =
// (i / inner) % size.  Multipliers m_t are sum_params' integers with the operand's sign (Sub) folded in
// (signed mult_t); zero points z_t the operands' own.  Per-channel (along the last axis) multipliers or
// zero points come as arrays of n_chan entries indexed by the output's last-axis position (per_channel),
// else as one-element arrays.  One rounding, by the shared shift S, per output element; no overflow
// inside: accum_t holds sum_t max|x_t - z_t| * max|m_t|.
//
// struct config {
//   typedef ... a_t; typedef ... b_t; typedef ... out_t;   // element types
//   typedef ... mult_t;   // signed, holds every +-m_t (ap_int<32>)
//   typedef ... zp_t;     // holds the zero points
//   typedef ... accum_t;  // ap_int<B>
//   static const int n_elem, n_chan;            // output elements of one sample; its last dim
//   static const int a_inner, a_size, b_inner, b_size;
//   static const bool a_per_channel, b_per_channel;
//   static const int shift;                     // S
//   static const long long out_zero_point;
//   static const ap_q_mode rounding; static const ap_o_mode overflow;   // output type's modes
// };
// add<config>(a, b, y, ma, za, mb, zb); a single-operand weighted sum is add1<config>(a, y, ma, za) (same
// config without the b fields).
#ifndef HWGEN_ADD_H
#define HWGEN_ADD_H

#include "requant.h"

namespace hwgen {

// (x - z) * m at exact width.
template <class X_T, class ZP_T, class M_T>
inline ap_int<elem<X_T>::bits + 1 + elem<M_T>::bits> weighted_term(const X_T& x, const ZP_T& z, const M_T& m) {
#pragma HLS INLINE
  typedef ap_int<elem<X_T>::bits + 1> xc_t;
  const xc_t c = (xc_t)(raw(x) - raw(z));
  return (ap_int<elem<X_T>::bits + 1 + elem<M_T>::bits>)c * m;
}

template <class CONFIG_T>
void add(const typename CONFIG_T::a_t a[CONFIG_T::a_size], const typename CONFIG_T::b_t b[CONFIG_T::b_size],
         typename CONFIG_T::out_t y[CONFIG_T::n_elem],
         const typename CONFIG_T::mult_t ma[], const typename CONFIG_T::zp_t za[],
         const typename CONFIG_T::mult_t mb[], const typename CONFIG_T::zp_t zb[]) {
#pragma HLS INLINE off
  typedef typename CONFIG_T::accum_t accum_t;
  bcast_iter<CONFIG_T::a_inner, CONFIG_T::a_size> ia;
  bcast_iter<CONFIG_T::b_inner, CONFIG_T::b_size> ib;
  bcast_iter<1, CONFIG_T::n_chan> ic;
ELEM:
  for (int i = 0; i < CONFIG_T::n_elem; i++) {
#pragma HLS PIPELINE II = 1
    const int c = ic.get();
    const int ca = CONFIG_T::a_per_channel ? c : 0;
    const int cb = CONFIG_T::b_per_channel ? c : 0;
    accum_t acc = (accum_t)weighted_term(a[ia.get()], za[ca], ma[ca]);
    acc += (accum_t)weighted_term(b[ib.get()], zb[cb], mb[cb]);
    y[i] = sum_out<typename CONFIG_T::out_t, CONFIG_T::rounding, CONFIG_T::overflow>(acc, CONFIG_T::shift,
                                                                                     CONFIG_T::out_zero_point);
    ia.step();
    ib.step();
    ic.step();
  }
}

template <class CONFIG_T>
void add1(const typename CONFIG_T::a_t a[CONFIG_T::a_size], typename CONFIG_T::out_t y[CONFIG_T::n_elem],
          const typename CONFIG_T::mult_t ma[], const typename CONFIG_T::zp_t za[]) {
#pragma HLS INLINE off
  typedef typename CONFIG_T::accum_t accum_t;
  bcast_iter<CONFIG_T::a_inner, CONFIG_T::a_size> ia;
  bcast_iter<1, CONFIG_T::n_chan> ic;
ELEM:
  for (int i = 0; i < CONFIG_T::n_elem; i++) {
#pragma HLS PIPELINE II = 1
    const int ca = CONFIG_T::a_per_channel ? ic.get() : 0;
    const accum_t acc = (accum_t)weighted_term(a[ia.get()], za[ca], ma[ca]);
    y[i] = sum_out<typename CONFIG_T::out_t, CONFIG_T::rounding, CONFIG_T::overflow>(acc, CONFIG_T::shift,
                                                                                     CONFIG_T::out_zero_point);
    ia.step();
    ic.step();
  }
}

}  // namespace hwgen

#endif  // HWGEN_ADD_H
