// attention.h -- streaming attention for one layer, all heads: scores never leave the chip.
//
// Bit for bit the hwgen op chain  matmul(Q, K^T) -> [mul(constant)] -> softmax -> matmul(P, V):
//   s = requant_qk(sum_d (q - q_zp)(k - k_zp))                       the matmul op's requantisation
//   t = requant_scale((s - s_zp) * scale_c)  (if has_scale)          the mul op (scale_c = c - c_zp, or -1/+1)
//   softmax over t exactly as softmax.h (table exp, integer sum, one division per row, 24-bit prob, requant)
//   o = requant_pv(sum_j (p - p_zp)(v - v_zp))                       the matmul op's requantisation
//
// One DATAFLOW region of four processes connected by FIFOs (UbiMoE-style, P query rows at a time):
//   scores:  per head, K is streamed once into an on-chip buffer; then per group of P query rows, one key
//            per cycle: P dot products of head_dim, requantised (and scaled) -> FIFO (depth n_kv, so the
//            whole score row is buffered) and, after the row, its running max -> max FIFO.
//   exp:     reads the max first (so waits until the row is complete), then e = EXP[max - t], row sums.
//   pv:      per head, V is streamed once into an on-chip buffer; per group: P dividers give the row
//            reciprocals, then one key per cycle: P probabilities, P x v_dim MACs with V[j].
//   write:   serialises the finished rows to the output stream.
// Streams carry one code per element: Q [h][i][d], K [h][j][d] (K's rows, i.e. K^T's columns),
// V [h][j][d], out [h][i][d].  Rows of the last group beyond n_q are computed on q = q_zp and dropped.
//
// struct config {
//   typedef ... q_t, k_t, v_t;       // input elements
//   typedef ... s_t;                 // the Q K^T matmul's output type (the scores' codes)
//   typedef ... out_t;               // output element
//   typedef ap_int<B> qk_acc_t, pv_acc_t;   // accumulators (numerics.accumulator_bits of each matmul)
//   static const unsigned n_heads, n_q, n_kv, head_dim, v_dim;
//   static const unsigned parallel;  // P: query rows processed together (knob; results do not depend on it)
//   static const long long q_zero_point, k_zero_point, qk_m0, s_zero_point;  static const int qk_shift;
//   static const ap_q_mode s_rounding;  static const ap_o_mode s_overflow;
//   static const bool has_scale;     // a mul by a constant between the matmul and the softmax
//   static const long long scale_c, scale_m0, t_zero_point;  static const int scale_shift;
//   static const ap_q_mode t_rounding;  static const ap_o_mode t_overflow;   // t_t = softmax::in_t
//   typedef ... softmax;             // a softmax.h config with in_t = the softmax input type, row = n_kv
//   static const long long v_zero_point, pv_m0, out_zero_point;  static const int pv_shift;
//   static const ap_q_mode rounding;  static const ap_o_mode overflow;       // the output type's modes
// };
// hwgen::attention<config>(q_stream, k_stream, v_stream, out_stream);
#ifndef HWGEN_ATTENTION_H
#define HWGEN_ATTENTION_H

#include <hls_stream.h>

#include "softmax.h"

namespace hwgen {

template <class T, unsigned N>
struct attn_vec {
  T v[N];
};

// ---- process 1: scores of P query rows against every key, and each row's max ----
template <class CONFIG>
void attention_scores(hls::stream<typename CONFIG::q_t>& q, hls::stream<typename CONFIG::k_t>& k,
                      hls::stream<attn_vec<typename CONFIG::softmax::in_t, CONFIG::parallel> >& scores,
                      hls::stream<attn_vec<typename CONFIG::softmax::in_t, CONFIG::parallel> >& maxes) {
  typedef typename CONFIG::softmax::in_t t_t;
  typedef typename CONFIG::s_t s_t;
  const unsigned P = CONFIG::parallel;
  const unsigned groups = (CONFIG::n_q + P - 1) / P;
  typename CONFIG::k_t kbuf[CONFIG::n_kv][CONFIG::head_dim];
  typename CONFIG::q_t qbuf[P][CONFIG::head_dim];
#pragma HLS ARRAY_PARTITION variable = kbuf complete dim = 2
#pragma HLS ARRAY_PARTITION variable = qbuf complete dim = 0
HEADS:
  for (unsigned h = 0; h < CONFIG::n_heads; h++) {
  LOAD_K:
    for (unsigned j = 0; j < CONFIG::n_kv; j++) {
      for (unsigned d = 0; d < CONFIG::head_dim; d++) {
#pragma HLS PIPELINE II = 1
        kbuf[j][d] = k.read();
      }
    }
  QUERY_GROUPS:
    for (unsigned g = 0; g < groups; g++) {
    LOAD_Q:
      for (unsigned p = 0; p < P; p++) {
        for (unsigned d = 0; d < CONFIG::head_dim; d++) {
#pragma HLS PIPELINE II = 1
          qbuf[p][d] = (g * P + p < CONFIG::n_q) ? q.read() : from_raw<typename CONFIG::q_t>(CONFIG::q_zero_point);
        }
      }
      i64 mx[P];
#pragma HLS ARRAY_PARTITION variable = mx complete
    KEYS:
      for (unsigned j = 0; j < CONFIG::n_kv; j++) {
#pragma HLS PIPELINE II = 1
        attn_vec<t_t, CONFIG::parallel> out;
        for (unsigned p = 0; p < P; p++) {
#pragma HLS UNROLL
          typename CONFIG::qk_acc_t acc = 0;
          for (unsigned d = 0; d < CONFIG::head_dim; d++) {
#pragma HLS UNROLL
            acc += (raw(qbuf[p][d]) - CONFIG::q_zero_point) * (raw(kbuf[j][d]) - CONFIG::k_zero_point);
          }
          i64 t = requantize<elem<s_t>::bits, elem<s_t>::is_signed, CONFIG::s_rounding, CONFIG::s_overflow>(
              raw(acc), CONFIG::qk_m0, CONFIG::qk_shift, CONFIG::s_zero_point);
          if (CONFIG::has_scale)
            t = requantize<elem<t_t>::bits, elem<t_t>::is_signed, CONFIG::t_rounding, CONFIG::t_overflow>(
                (t - CONFIG::s_zero_point) * CONFIG::scale_c, CONFIG::scale_m0, CONFIG::scale_shift,
                CONFIG::t_zero_point);
          out.v[p] = from_raw<t_t>(t);
          if (j == 0 || t > mx[p]) mx[p] = t;
        }
        scores.write(out);
      }
      attn_vec<t_t, CONFIG::parallel> m;
      for (unsigned p = 0; p < P; p++) {
#pragma HLS UNROLL
        m.v[p] = from_raw<t_t>(mx[p]);
      }
      maxes.write(m);
    }
  }
}

// ---- process 2: e = EXP[max - t] once the row's max is known, and the row sums ----
template <class CONFIG>
void attention_exp(hls::stream<attn_vec<typename CONFIG::softmax::in_t, CONFIG::parallel> >& scores,
                   hls::stream<attn_vec<typename CONFIG::softmax::in_t, CONFIG::parallel> >& maxes,
                   hls::stream<attn_vec<typename CONFIG::softmax::exp_t, CONFIG::parallel> >& exps,
                   hls::stream<attn_vec<typename CONFIG::softmax::sum_t, CONFIG::parallel> >& sums) {
  typedef typename CONFIG::softmax SM;
  const unsigned P = CONFIG::parallel;
  const unsigned groups = (CONFIG::n_q + P - 1) / P;
ROWS:
  for (unsigned hg = 0; hg < CONFIG::n_heads * groups; hg++) {
    const attn_vec<typename SM::in_t, CONFIG::parallel> m = maxes.read();
    attn_vec<typename SM::sum_t, CONFIG::parallel> s;
    for (unsigned p = 0; p < P; p++) {
#pragma HLS UNROLL
      s.v[p] = 0;
    }
  KEYS:
    for (unsigned j = 0; j < CONFIG::n_kv; j++) {
#pragma HLS PIPELINE II = 1
      const attn_vec<typename SM::in_t, CONFIG::parallel> t = scores.read();
      attn_vec<typename SM::exp_t, CONFIG::parallel> e;
      for (unsigned p = 0; p < P; p++) {
#pragma HLS UNROLL
        e.v[p] = softmax_exp<SM>(raw(m.v[p]) - raw(t.v[p]));
        s.v[p] += e.v[p];
      }
      exps.write(e);
    }
    sums.write(s);
  }
}

// ---- process 3: one division per row, probabilities, P x V ----
template <class CONFIG>
void attention_pv(hls::stream<attn_vec<typename CONFIG::softmax::exp_t, CONFIG::parallel> >& exps,
                  hls::stream<attn_vec<typename CONFIG::softmax::sum_t, CONFIG::parallel> >& sums,
                  hls::stream<typename CONFIG::v_t>& v,
                  hls::stream<attn_vec<typename CONFIG::out_t, CONFIG::v_dim> >& rows) {
  typedef typename CONFIG::softmax SM;
  typedef typename CONFIG::out_t out_t;
  const unsigned P = CONFIG::parallel;
  const unsigned groups = (CONFIG::n_q + P - 1) / P;
  typename CONFIG::v_t vbuf[CONFIG::n_kv][CONFIG::v_dim];
  typename CONFIG::pv_acc_t acc[P][CONFIG::v_dim];
  u64 recip[P];
#pragma HLS ARRAY_PARTITION variable = vbuf complete dim = 2
#pragma HLS ARRAY_PARTITION variable = acc complete dim = 0
#pragma HLS ARRAY_PARTITION variable = recip complete
HEADS:
  for (unsigned h = 0; h < CONFIG::n_heads; h++) {
  LOAD_V:
    for (unsigned j = 0; j < CONFIG::n_kv; j++) {
      for (unsigned d = 0; d < CONFIG::v_dim; d++) {
#pragma HLS PIPELINE II = 1
        vbuf[j][d] = v.read();
      }
    }
  QUERY_GROUPS:
    for (unsigned g = 0; g < groups; g++) {
      const attn_vec<typename SM::sum_t, CONFIG::parallel> s = sums.read();
      for (unsigned p = 0; p < P; p++) {
#pragma HLS UNROLL
        recip[p] = softmax_recip<SM>(s.v[p]);  // one divider per row
        for (unsigned d = 0; d < CONFIG::v_dim; d++) {
#pragma HLS UNROLL
          acc[p][d] = 0;
        }
      }
    KEYS:
      for (unsigned j = 0; j < CONFIG::n_kv; j++) {
#pragma HLS PIPELINE II = 1
        const attn_vec<typename SM::exp_t, CONFIG::parallel> e = exps.read();
        for (unsigned p = 0; p < P; p++) {
#pragma HLS UNROLL
          const i64 w = softmax_prob<SM>(e.v[p], recip[p]) - SM::out_zero_point;
          for (unsigned d = 0; d < CONFIG::v_dim; d++) {
#pragma HLS UNROLL
            acc[p][d] += w * (raw(vbuf[j][d]) - CONFIG::v_zero_point);
          }
        }
      }
    EMIT:
      for (unsigned p = 0; p < P; p++) {
#pragma HLS PIPELINE II = 1
        if (g * P + p < CONFIG::n_q) {
          attn_vec<out_t, CONFIG::v_dim> o;
          for (unsigned d = 0; d < CONFIG::v_dim; d++) {
#pragma HLS UNROLL
            o.v[d] = from_raw<out_t>(
                requantize<elem<out_t>::bits, elem<out_t>::is_signed, CONFIG::rounding, CONFIG::overflow>(
                    raw(acc[p][d]), CONFIG::pv_m0, CONFIG::pv_shift, CONFIG::out_zero_point));
          }
          rows.write(o);
        }
      }
    }
  }
}

// ---- process 4: finished rows -> output stream ----
template <class CONFIG>
void attention_write(hls::stream<attn_vec<typename CONFIG::out_t, CONFIG::v_dim> >& rows,
                     hls::stream<typename CONFIG::out_t>& out) {
ROWS:
  for (unsigned r = 0; r < CONFIG::n_heads * CONFIG::n_q; r++) {
    attn_vec<typename CONFIG::out_t, CONFIG::v_dim> o;
    for (unsigned d = 0; d < CONFIG::v_dim; d++) {
#pragma HLS PIPELINE II = 1
      if (d == 0) o = rows.read();
      out.write(o.v[d]);
    }
  }
}

template <class CONFIG>
void attention(hls::stream<typename CONFIG::q_t>& q, hls::stream<typename CONFIG::k_t>& k,
               hls::stream<typename CONFIG::v_t>& v, hls::stream<typename CONFIG::out_t>& out) {
#pragma HLS DATAFLOW
  typedef typename CONFIG::softmax SM;
  static_assert(SM::row == CONFIG::n_kv, "the softmax config must have row == n_kv");
  hls::stream<attn_vec<typename SM::in_t, CONFIG::parallel> > scores("attn_scores");
  hls::stream<attn_vec<typename SM::in_t, CONFIG::parallel> > maxes("attn_maxes");
  hls::stream<attn_vec<typename SM::exp_t, CONFIG::parallel> > exps("attn_exps");
  hls::stream<attn_vec<typename SM::sum_t, CONFIG::parallel> > sums("attn_sums");
  hls::stream<attn_vec<typename CONFIG::out_t, CONFIG::v_dim> > rows("attn_rows");
#pragma HLS STREAM variable = scores depth = CONFIG::n_kv
#pragma HLS STREAM variable = maxes depth = 2
#pragma HLS STREAM variable = exps depth = CONFIG::n_kv
#pragma HLS STREAM variable = sums depth = 2
#pragma HLS STREAM variable = rows depth = CONFIG::parallel
  attention_scores<CONFIG>(q, k, scores, maxes);
  attention_exp<CONFIG>(scores, maxes, exps, sums);
  attention_pv<CONFIG>(exps, sums, v, rows);
  attention_write<CONFIG>(rows, out);
}

}  // namespace hwgen

#endif  // HWGEN_ATTENTION_H
