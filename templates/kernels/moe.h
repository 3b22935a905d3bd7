// moe.h -- mixture-of-experts routing and combine (hwgen/ops/moe.py, bit for bit).
//
// Router: the gate kernels (linear -> softmax, generated as CONFIG::gate::run) give probability codes
// p[t][e]; per token the top_k largest are kept by insertion into a sorted list, a later expert displacing
// a kept one only when strictly larger (ties go to the lower expert index, as onnxruntime's TopK and the
// simulator's stable argsort).  The kept probabilities are used unnormalised (M3ViT).
// Experts, expert by expert (M3ViT reordering): each expert's token queue (token order) is gathered,
// CONFIG::experts::run(e, rows, n, out) runs that expert's linear/lut kernels on the n queued rows only,
// and the results are scatter-added into one wide accumulator:
//   acc[t][o] += ((p[t][e] - p_zero_point) * mult[e]) * (y_e[t][o] - y_zero_point[e])        (one multiplier per expert)
// and finally  out = sat(round(acc * 2^-shift) + out_zero_point)                      (one shift for all experts).
//
// Configuration:
// struct config {
//   typedef ... x_t;  typedef ... prob_t;  typedef ... y_t;  typedef ... out_t;
//   typedef ap_int<B> acc_t;                     // holds top_k * max|(p - p_zp) * mult * (y - y_zp)|
//   static const unsigned n_tokens, n_in, n_out, n_experts, top_k;
//   static const long long p_zero_point;         // router probabilities (the gate softmax's output type)
//   static const long long y_zero_point[], mult[];   // per expert (MoE.params(): y_zero_points, mults)
//   static const int shift;
//   static const long long out_zero_point;
//   static const ap_q_mode rounding;  static const ap_o_mode overflow;   // the output type's modes
//   struct gate    { static void run(const x_t x[n_tokens*n_in], prob_t p[n_tokens*n_experts], W... w); };
//   struct experts { static void run(unsigned e, const x_t x[n_tokens*n_in], unsigned n_rows,
//                                    y_t y[n_tokens*n_out], W... w); };     // generated: a switch over e
// };
// hwgen::moe<config>(x, y, w...);  // x: [n_tokens][n_in], y: [n_tokens][n_out], row-major; w: weight memories
// y_t is one storage type for every expert's output codes (the widest of them); experts::run gets the
// number of queued rows at run time (rows past n_rows are don't-care).
#ifndef HWGEN_MOE_H
#define HWGEN_MOE_H

#include "softmax.h"

namespace hwgen {

// Top-k of one token's probability codes: sel[0..top_k) = expert indices, largest first, ties to the
// lower index.  Parallel insertion: slot s takes the new value when it is strictly larger than slot s's
// value (or slot s is empty), the previous content moving down one slot.
template <class CONFIG>
void moe_topk(const typename CONFIG::prob_t p[CONFIG::n_experts], unsigned sel[CONFIG::top_k]) {
  i64 val[CONFIG::top_k];
  unsigned idx[CONFIG::top_k];
  bool used[CONFIG::top_k];
#pragma HLS ARRAY_PARTITION variable = val complete
#pragma HLS ARRAY_PARTITION variable = idx complete
#pragma HLS ARRAY_PARTITION variable = used complete
  for (unsigned s = 0; s < CONFIG::top_k; s++) {
#pragma HLS UNROLL
    val[s] = 0;
    idx[s] = 0;
    used[s] = false;
  }
EXPERTS:
  for (unsigned e = 0; e < CONFIG::n_experts; e++) {
#pragma HLS PIPELINE II = 1
    const i64 v = raw(p[e]);
    bool take[CONFIG::top_k];
#pragma HLS ARRAY_PARTITION variable = take complete
    for (unsigned s = 0; s < CONFIG::top_k; s++) {
#pragma HLS UNROLL
      take[s] = !used[s] || v > val[s];
    }
    for (int s = (int)CONFIG::top_k - 1; s >= 0; s--) {
#pragma HLS UNROLL
      if (take[s]) {
        if (s > 0 && take[s - 1]) {  // the new value lands above: shift the slot above down
          val[s] = val[s - 1];
          idx[s] = idx[s - 1];
          used[s] = used[s - 1];
        } else {  // the new value lands here
          val[s] = v;
          idx[s] = e;
          used[s] = true;
        }
      }
    }
  }
  for (unsigned s = 0; s < CONFIG::top_k; s++) {
#pragma HLS UNROLL
    sel[s] = idx[s];
  }
}

// Routing: per-expert token queues (token order) and their weights (p - p_zero_point).
template <class CONFIG>
void moe_route(const typename CONFIG::prob_t probs[CONFIG::n_tokens * CONFIG::n_experts],
               unsigned count[CONFIG::n_experts], unsigned queue_tok[CONFIG::n_experts][CONFIG::n_tokens],
               i64 queue_w[CONFIG::n_experts][CONFIG::n_tokens]) {
  for (unsigned e = 0; e < CONFIG::n_experts; e++) {
#pragma HLS UNROLL
    count[e] = 0;
  }
TOKENS:
  for (unsigned t = 0; t < CONFIG::n_tokens; t++) {
    unsigned sel[CONFIG::top_k];
    moe_topk<CONFIG>(&probs[t * CONFIG::n_experts], sel);
  ENQUEUE:
    for (unsigned s = 0; s < CONFIG::top_k; s++) {
#pragma HLS PIPELINE II = 1
      const unsigned e = sel[s];
      queue_tok[e][count[e]] = t;
      queue_w[e][count[e]] = raw(probs[t * CONFIG::n_experts + e]) - CONFIG::p_zero_point;
      count[e]++;
    }
  }
}

// acc[t] += (w * mult[e]) * (y - y_zp[e]) for every row of expert e's queue.
template <class CONFIG>
void moe_accumulate(unsigned e, unsigned n, const unsigned queue_tok[CONFIG::n_tokens],
                    const i64 queue_w[CONFIG::n_tokens], const typename CONFIG::y_t y[CONFIG::n_tokens * CONFIG::n_out],
                    typename CONFIG::acc_t acc[CONFIG::n_tokens * CONFIG::n_out]) {
  const i64 mult = CONFIG::mult[e];
  const i64 yzp = CONFIG::y_zero_point[e];
ROWS:
  for (unsigned i = 0; i < n; i++) {
#pragma HLS LOOP_TRIPCOUNT min = 0 max = CONFIG::n_tokens
    const unsigned t = queue_tok[i];
    const i64 wm = queue_w[i] * mult;  // the expert's one multiplier, once per token
  COLS:
    for (unsigned o = 0; o < CONFIG::n_out; o++) {
#pragma HLS PIPELINE II = 1
      acc[t * CONFIG::n_out + o] += wm * (raw(y[i * CONFIG::n_out + o]) - yzp);
    }
  }
}

// out = sat(round(acc * 2^-shift) + out_zp): the one rounding of the combine.
template <class CONFIG>
void moe_finalize(const typename CONFIG::acc_t acc[CONFIG::n_tokens * CONFIG::n_out],
                  typename CONFIG::out_t out[CONFIG::n_tokens * CONFIG::n_out]) {
ELEMENTS:
  for (unsigned i = 0; i < CONFIG::n_tokens * CONFIG::n_out; i++) {
#pragma HLS PIPELINE II = 1
    typedef typename CONFIG::out_t out_t;
    const i64 q = overflow<elem<out_t>::bits, elem<out_t>::is_signed, CONFIG::overflow>(
        shift_round<CONFIG::rounding>(raw(acc[i]), CONFIG::shift) + CONFIG::out_zero_point);
    out[i] = from_raw<out_t>(q);
  }
}

// The op: gate, route, experts one by one on their queued tokens, combine.  `w...` (none, or the weight
// memories of a generated project: m_axi pointers) are passed on to gate::run and experts::run.
template <class CONFIG, class... W>
void moe(const typename CONFIG::x_t x[CONFIG::n_tokens * CONFIG::n_in],
         typename CONFIG::out_t y[CONFIG::n_tokens * CONFIG::n_out], W... w) {
  typename CONFIG::prob_t probs[CONFIG::n_tokens * CONFIG::n_experts];
  unsigned count[CONFIG::n_experts];
  unsigned queue_tok[CONFIG::n_experts][CONFIG::n_tokens];
  i64 queue_w[CONFIG::n_experts][CONFIG::n_tokens];
  typename CONFIG::x_t xin[CONFIG::n_tokens * CONFIG::n_in];
  typename CONFIG::y_t yout[CONFIG::n_tokens * CONFIG::n_out];
  typename CONFIG::acc_t acc[CONFIG::n_tokens * CONFIG::n_out];

  CONFIG::gate::run(x, probs, w...);
  moe_route<CONFIG>(probs, count, queue_tok, queue_w);
CLEAR:
  for (unsigned i = 0; i < CONFIG::n_tokens * CONFIG::n_out; i++) {
#pragma HLS PIPELINE II = 1
    acc[i] = 0;
  }
EXPERTS:
  for (unsigned e = 0; e < CONFIG::n_experts; e++) {
    const unsigned n = count[e];
    if (n == 0) continue;  // an expert nobody chose: its weights are never loaded
  GATHER:
    for (unsigned i = 0; i < n; i++) {
#pragma HLS LOOP_TRIPCOUNT min = 0 max = CONFIG::n_tokens
      for (unsigned c = 0; c < CONFIG::n_in; c++) {
#pragma HLS PIPELINE II = 1
        xin[i * CONFIG::n_in + c] = x[queue_tok[e][i] * CONFIG::n_in + c];
      }
    }
    CONFIG::experts::run(e, xin, n, yout, w...);
    moe_accumulate<CONFIG>(e, n, queue_tok[e], queue_w[e], yout, acc);
  }
  moe_finalize<CONFIG>(acc, y);
}

}  // namespace hwgen

#endif  // HWGEN_MOE_H
