// linear.h -- y = requant((x - zx) @ W + b): the reusable tiled matrix kernel of hwgen (Q/K/V/O projections,
// FFNs, MoE experts, the classifier head; patch_embed.h and matmul.h run the same core).
//
// Bit-exact spelling of hwgen/ops/linear.py Linear.simulate with the integers of Linear.params():
//   weight  = W - zw (per output channel), [n_in][n_out] row-major      -> argument w (weight_t)
//   bias    = the int32 bias in accumulator units, [n_out]               -> argument b (bias_t)
//   m0/shift per output channel (common.requant_params)                  -> arguments m0 / shift
//   x_zero_point, acc_bits (accum_t = ap_int<acc_bits>)                 -> config
// The activation zero point is subtracted once per loaded element (not per MAC), so every partial sum is
// bounded by Linear.params()["acc_bits"]; the sum is exact and its order irrelevant, hence any tiling gives
// the same integers as the simulator.
//
// Schedule (UbiMoE / Edge-MoE style weight-tile reuse): rows (tokens) are processed N_LANES at a time; for
// each T_OUT-wide tile of outputs and each T_IN-deep tile of inputs a weight tile [T_IN][T_OUT] is loaded
// once (from `w`, which a top level binds to m_axi) and shared by the N_LANES token lanes; the MAC loop
// runs one input per cycle (II=1) doing N_LANES x T_OUT multiplications.  Edges (dims not multiples of the
// tiles) are masked, so any tile_in / tile_out / n_lanes >= 1 is legal.
//
// struct config {
//   typedef ... in_t;      // activation element (ap_int / ap_uint / ap_fixed / ap_ufixed)
//   typedef ... weight_t;  // holds W - zw (ap_int<B>)
//   typedef ... bias_t;    // holds the bias (ap_int<B>)
//   typedef ... accum_t;   // ap_int<acc_bits>
//   typedef ... mult_t;    // holds m0 (ap_uint<31>)
//   typedef ... shift_t;   // holds the shifts (ap_int<B>)
//   typedef ... out_t;     // output element
//   static const int n_rows, n_in, n_out;           // rows = product of the leading dims of one sample
//   static const int tile_in, tile_out, n_lanes;    // schedule knobs (results do not depend on them)
//   static const long long x_zero_point, out_zero_point;
//   static const ap_q_mode rounding;                // the output type's rounding and overflow modes
//   static const ap_o_mode overflow;
// };
// void linear<config>(x[n_rows*n_in], y[n_rows*n_out], w[n_in*n_out], b[n_out], m0[n_out], shift[n_out])
// void linear_rows<config>(x, y, w, b, m0, shift, int rows)   // the first `rows` (<= n_rows) rows only
#ifndef HWGEN_LINEAR_H
#define HWGEN_LINEAR_H

#include "requant.h"

namespace hwgen {

// Row-major addressing: x[r][i], y[r][o].  (patch_embed.h supplies an im2col / NCHW one.)
struct rows_addr {
  template <class C> static int x_index(int r, int i) { return r * C::n_in + i; }
  template <class C> static int y_index(int r, int o) { return r * C::n_out + o; }
};

// The shared tiled core.  Extra config fields read here (defaults for linear given by linear_core_cfg):
//   W_ZP        subtracted from every weight code on load (matmul: the right operand's zero point)
//   HAS_BIAS    accumulators start from b[o] (else 0)
//   PER_CHANNEL m0 / shift indexed by output (else element 0)
template <class CONFIG_T, class ADDR, long long W_ZP, bool HAS_BIAS, bool PER_CHANNEL>
void gemm_tiled(const typename CONFIG_T::in_t* x, typename CONFIG_T::out_t* y,
                const typename CONFIG_T::weight_t* w, const typename CONFIG_T::bias_t* b,
                const typename CONFIG_T::mult_t* m0, const typename CONFIG_T::shift_t* shift,
                const int n_rows = CONFIG_T::n_rows) {
#pragma HLS INLINE
  typedef typename CONFIG_T::in_t in_t;
  typedef typename CONFIG_T::weight_t weight_t;
  typedef typename CONFIG_T::accum_t accum_t;
  typedef typename CONFIG_T::out_t out_t;
  typedef ap_int<elem<in_t>::bits + 1> xc_t;                          // x - zx
  // w - zw: one more bit when a zero point is subtracted or the codes are unsigned (matmul's b may be uint8)
  typedef ap_int<elem<weight_t>::bits + ((W_ZP != 0 || !elem<weight_t>::is_signed) ? 1 : 0)> wc_t;
  const int R = n_rows;  // rows of this call: CONFIG_T::n_rows, or fewer (linear_rows: a MoE expert's tokens)
  static const int K = CONFIG_T::n_in;
  static const int N = CONFIG_T::n_out;
  static const int NL = CONFIG_T::n_lanes;
  static const int TI = CONFIG_T::tile_in;
  static const int TO = CONFIG_T::tile_out;
  static_assert(NL >= 1 && TI >= 1 && TO >= 1, "tile sizes and lanes must be >= 1");
  static const int MAX_GROUPS = (CONFIG_T::n_rows + NL - 1) / NL;

ROW_GROUPS:
  for (int r0 = 0; r0 < R; r0 += NL) {
#pragma HLS LOOP_TRIPCOUNT min = 0 max = MAX_GROUPS
    xc_t xbuf[NL][K];
#pragma HLS ARRAY_PARTITION variable = xbuf complete dim = 1
  LOAD_X:
    for (int l = 0; l < NL; l++) {
      for (int i = 0; i < K; i++) {
#pragma HLS PIPELINE II = 1
        const int r = r0 + l;
        xbuf[l][i] = r < R ? (xc_t)(raw(x[ADDR::template x_index<CONFIG_T>(r, i)]) - CONFIG_T::x_zero_point)
                           : (xc_t)0;
      }
    }
  OUT_TILES:
    for (int o0 = 0; o0 < N; o0 += TO) {
      accum_t acc[NL][TO];
#pragma HLS ARRAY_PARTITION variable = acc complete dim = 0
    INIT:
      for (int l = 0; l < NL; l++) {
#pragma HLS UNROLL
        for (int oo = 0; oo < TO; oo++) {
#pragma HLS UNROLL
          acc[l][oo] = (HAS_BIAS && o0 + oo < N) ? (accum_t)b[o0 + oo] : (accum_t)0;
        }
      }
    IN_TILES:
      for (int i0 = 0; i0 < K; i0 += TI) {
        wc_t wbuf[TI][TO];
#pragma HLS ARRAY_PARTITION variable = wbuf complete dim = 2
      LOAD_W:
        for (int ii = 0; ii < TI; ii++) {
          for (int oo = 0; oo < TO; oo++) {
#pragma HLS PIPELINE II = 1
            const int i = i0 + ii, o = o0 + oo;
            wbuf[ii][oo] = (i < K && o < N) ? (wc_t)(raw(w[i * N + o]) - W_ZP) : (wc_t)0;
          }
        }
      MAC:
        for (int ii = 0; ii < TI; ii++) {
#pragma HLS PIPELINE II = 1
          if (i0 + ii < K) {
            for (int l = 0; l < NL; l++) {
#pragma HLS UNROLL
              const xc_t xv = xbuf[l][i0 + ii];
              for (int oo = 0; oo < TO; oo++) {
#pragma HLS UNROLL
                acc[l][oo] += xv * wbuf[ii][oo];
              }
            }
          }
        }
      }
    WRITE:
      for (int l = 0; l < NL; l++) {
        for (int oo = 0; oo < TO; oo++) {
#pragma HLS PIPELINE II = 1
          const int r = r0 + l, o = o0 + oo;
          if (r < R && o < N) {
            const int c = PER_CHANNEL ? o : 0;
            y[ADDR::template y_index<CONFIG_T>(r, o)] =
                requant_out<out_t, CONFIG_T::rounding, CONFIG_T::overflow>(acc[l][oo], m0[c], (int)shift[c],
                                                                           CONFIG_T::out_zero_point);
          }
        }
      }
    }
  }
}

template <class CONFIG_T>
void linear(const typename CONFIG_T::in_t x[CONFIG_T::n_rows * CONFIG_T::n_in],
            typename CONFIG_T::out_t y[CONFIG_T::n_rows * CONFIG_T::n_out],
            const typename CONFIG_T::weight_t w[CONFIG_T::n_in * CONFIG_T::n_out],
            const typename CONFIG_T::bias_t b[CONFIG_T::n_out],
            const typename CONFIG_T::mult_t m0[CONFIG_T::n_out],
            const typename CONFIG_T::shift_t shift[CONFIG_T::n_out]) {
#pragma HLS INLINE off
  gemm_tiled<CONFIG_T, rows_addr, 0, true, true>(x, y, w, b, m0, shift);
}

// linear with the row count given at run time (0 <= n_rows <= CONFIG_T::n_rows): the same tiled core, for
// MoE experts that run on the tokens routed to them only (rows past n_rows are neither read nor written).
template <class CONFIG_T>
void linear_rows(const typename CONFIG_T::in_t x[CONFIG_T::n_rows * CONFIG_T::n_in],
                 typename CONFIG_T::out_t y[CONFIG_T::n_rows * CONFIG_T::n_out],
                 const typename CONFIG_T::weight_t w[CONFIG_T::n_in * CONFIG_T::n_out],
                 const typename CONFIG_T::bias_t b[CONFIG_T::n_out],
                 const typename CONFIG_T::mult_t m0[CONFIG_T::n_out],
                 const typename CONFIG_T::shift_t shift[CONFIG_T::n_out], int n_rows) {
#pragma HLS INLINE off
  gemm_tiled<CONFIG_T, rows_addr, 0, true, true>(x, y, w, b, m0, shift, n_rows);
}

}  // namespace hwgen

#endif  // HWGEN_LINEAR_H
