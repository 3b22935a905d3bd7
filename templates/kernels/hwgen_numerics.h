// hwgen_numerics.h -- integer rounding / saturation / requantisation for hwgen kernels.
//
// C++ spelling of hwgen/numerics.py: every function here returns exactly what its Python namesake returns
// (tests/test_numerics_cpp.py checks both against the real ap_fixed headers).  Header-only C++14, no
// floating point, no dynamic memory.  Modes reuse the ap_fixed enumerators (AP_TRN ... AP_RND_CONV,
// AP_WRAP / AP_SAT / AP_SAT_ZERO / AP_SAT_SYM), so hwgen emits the Python enum values verbatim.
//
// Values are carried in long long: every width hwgen generates fits (signed <= 64 bits, unsigned <= 63),
// and with compile-time modes/widths the HLS tool trims the unused logic.  Callers guarantee that products
// fit (hwgen sizes them with numerics.requant_product_bits / accumulator_bits).
#ifndef HWGEN_NUMERICS_H
#define HWGEN_NUMERICS_H

#include <ap_fixed.h>
#include <ap_int.h>

namespace hwgen {

typedef long long i64;
typedef unsigned long long u64;

// ---- ranges of a BITS-wide integer (constexpr; no shift by 64 anywhere) ----
template <int BITS, bool SIGNED>
struct int_limits {
  static_assert(BITS >= 1 && BITS <= (SIGNED ? 64 : 63), "width must fit in long long");
  static constexpr i64 max_v =
      SIGNED ? (BITS == 1 ? 0 : (i64)((~0ULL) >> (SIGNED && BITS > 1 ? 65 - BITS : 1)))
             : (i64)((~0ULL) >> (64 - BITS));
  static constexpr i64 min_v = SIGNED ? -max_v - 1 : 0;
};

// ap_int<BITS> / ap_uint<BITS> by signedness, for callers that want a typed result.
template <int BITS, bool SIGNED> struct int_type { typedef ap_int<BITS> type; };
template <int BITS> struct int_type<BITS, false> { typedef ap_uint<BITS> type; };

// ---- shift_round: x * 2^-shift rounded per Q (the ap_fixed quantisation rule) ----
// The result is floor(x / 2^shift) plus 0 or 1, decided from the dropped bits r in [0, 2^shift):
// gt = r > half, eq = r == half (a tie), nz = r != 0, and the sign of x.  shift < 0 is an exact left shift.
template <ap_q_mode Q>
inline i64 shift_round(i64 x, int shift) {
  if (shift <= 0) return (i64)((u64)x << (-shift));  // caller guarantees it fits
  const bool neg = x < 0;
  i64 fl;
  bool gt, eq, nz;
  if (shift >= 64) {
    // |x| <= 2^63 <= half: only x = -2^63 with shift 64 is a tie; other negatives are above the half.
    fl = neg ? -1 : 0;
    nz = x != 0;
    eq = neg && shift == 64 && (u64)x == (1ULL << 63);
    gt = neg && !eq;
  } else {
    fl = x >> shift;  // arithmetic shift (gcc / Vitis): floor
    const u64 rem = (u64)x & ((1ULL << shift) - 1);
    const u64 half = 1ULL << (shift - 1);
    gt = rem > half;
    eq = rem == half;
    nz = rem != 0;
  }
  bool inc;
  switch (Q) {
    case AP_TRN:         inc = false; break;                 // floor
    case AP_TRN_ZERO:    inc = neg && nz; break;             // toward zero
    case AP_RND:         inc = gt || eq; break;              // ties toward +inf
    case AP_RND_ZERO:    inc = gt || (eq && neg); break;     // ties toward zero
    case AP_RND_INF:     inc = gt || (eq && !neg); break;    // ties away from zero
    case AP_RND_MIN_INF: inc = gt; break;                    // ties toward -inf
    default:             inc = gt || (eq && (fl & 1)); break;  // AP_RND_CONV: ties to even
  }
  return fl + (i64)inc;
}

// ---- overflow: fit x into a BITS-wide (un)signed integer per O ----
template <int BITS, bool SIGNED, ap_o_mode O>
inline i64 overflow(i64 x) {
  typedef int_limits<BITS, SIGNED> L;
  if (O == AP_WRAP) {  // two's complement: keep the low BITS bits, sign-extend when signed
    if (BITS >= 64) return x;
    const u64 mask = (~0ULL) >> (64 - (BITS >= 64 ? 63 : BITS));
    u64 m = (u64)x & mask;
    if (SIGNED && (m >> (BITS - 1)) != 0) m |= ~mask;
    return (i64)m;
  }
  const bool sym = (O == AP_SAT_SYM) && SIGNED && BITS > 1;  // ap_fixed: 1-bit / unsigned SAT_SYM == SAT
  if (x > L::max_v) return O == AP_SAT_ZERO ? 0 : L::max_v;
  if (x < L::min_v) return O == AP_SAT_ZERO ? 0 : (sym ? -L::max_v : L::min_v);
  if (sym && x == L::min_v) return -L::max_v;  // SAT_SYM never produces the asymmetric minimum
  return x;
}

// ---- requantize: overflow(shift_round(acc * m0, shift) + zp) ----
// m0 / shift / zp are the per-tensor or per-channel values from numerics.quantize_multiplier; acc * m0 must
// fit in 64 bits (requant_product_bits(acc_bits, m_bits) <= 64).
template <int BITS, bool SIGNED, ap_q_mode Q = AP_RND_CONV, ap_o_mode O = AP_SAT>
inline i64 requantize(i64 acc, i64 m0, int shift, i64 zp) {
  return overflow<BITS, SIGNED, O>(shift_round<Q>(acc * m0, shift) + zp);
}

// Same, returning ap_int<BITS> / ap_uint<BITS>.
template <int BITS, bool SIGNED, ap_q_mode Q = AP_RND_CONV, ap_o_mode O = AP_SAT>
inline typename int_type<BITS, SIGNED>::type requantize_t(i64 acc, i64 m0, int shift, i64 zp) {
  return typename int_type<BITS, SIGNED>::type(requantize<BITS, SIGNED, Q, O>(acc, m0, shift, zp));
}

// ---- cast_fixed: raw q with FRAC_IN fractional bits -> raw ap_fixed<BITS, BITS-FRAC_OUT, Q, O> ----
// (ap_ufixed when !SIGNED).  Same result as assigning through real ap_fixed types; left shifts decide
// saturation from q before shifting, so nothing overflows even for large shifts.
template <int FRAC_IN, int BITS, int FRAC_OUT, bool SIGNED, ap_q_mode Q, ap_o_mode O>
inline i64 cast_fixed(i64 q) {
  typedef int_limits<BITS, SIGNED> L;
  const int sh = FRAC_IN - FRAC_OUT;
  if (sh >= 0) return overflow<BITS, SIGNED, O>(shift_round<Q>(q, sh));
  const int ls = -sh >= 63 ? 63 : (-sh < 0 ? 0 : -sh);  // clamped: no UB in the dead branch
  const i64 hi_q = L::max_v >> ls;                                       // floor(max / 2^ls)
  const i64 lo_q = (SIGNED && -sh < 64) ? -(i64)(((u64)0 - (u64)L::min_v) >> ls) : 0;  // ceil(min/2^ls)
  const i64 v = (-sh >= 64) ? 0 : (i64)((u64)q << ls);                   // value modulo 2^64
  if (O == AP_WRAP) return overflow<BITS, SIGNED, O>(v);
  if (q > hi_q) return O == AP_SAT_ZERO ? 0 : L::max_v;
  if (q < lo_q) {
    if (O == AP_SAT_ZERO) return 0;
    return (O == AP_SAT_SYM && SIGNED && BITS > 1) ? -L::max_v : L::min_v;
  }
  return overflow<BITS, SIGNED, O>(v);
}

// ---- element access: the integer code of any kernel element type, and back ----
// The simulator works on integer codes: an ap_int's value, an ap_fixed's raw bits (value * 2^frac).
// elem<T>::bits / is_signed describe the stored integer; elem<T>::raw(x) returns the code (sign-extended
// for signed types); elem<T>::make(v) builds a T whose stored bits are the low `bits` bits of v (callers
// pass in-range codes, e.g. the result of overflow<>).  Plain bit moves: no rounding, no saturation.
template <class T> struct elem;
template <int W> struct elem<ap_int<W> > {
  static const int bits = W;
  static const bool is_signed = true;
  static i64 raw(const ap_int<W>& x) { return (i64)x.to_int64(); }
  static ap_int<W> make(i64 v) { return ap_int<W>(v); }
};
template <int W> struct elem<ap_uint<W> > {
  static const int bits = W;
  static const bool is_signed = false;
  static i64 raw(const ap_uint<W>& x) { return (i64)x.to_uint64(); }
  static ap_uint<W> make(i64 v) { return ap_uint<W>(v); }
};
template <int W, int I, ap_q_mode Q, ap_o_mode O, int N> struct elem<ap_fixed<W, I, Q, O, N> > {
  static const int bits = W;
  static const bool is_signed = true;
  static i64 raw(const ap_fixed<W, I, Q, O, N>& x) {
    ap_uint<W> u = x.range(W - 1, 0);
    ap_int<W> s = u;  // same width: reinterpret the bits as signed
    return (i64)s.to_int64();
  }
  static ap_fixed<W, I, Q, O, N> make(i64 v) {
    ap_fixed<W, I, Q, O, N> x;
    x.range(W - 1, 0) = ap_int<W>(v);
    return x;
  }
};
template <int W, int I, ap_q_mode Q, ap_o_mode O, int N> struct elem<ap_ufixed<W, I, Q, O, N> > {
  static const int bits = W;
  static const bool is_signed = false;
  static i64 raw(const ap_ufixed<W, I, Q, O, N>& x) {
    ap_uint<W> u = x.range(W - 1, 0);
    return (i64)u.to_uint64();
  }
  static ap_ufixed<W, I, Q, O, N> make(i64 v) {
    ap_ufixed<W, I, Q, O, N> x;
    x.range(W - 1, 0) = ap_uint<W>(v);
    return x;
  }
};
#define HWGEN_ELEM_NATIVE(T, W, S)                         \
  template <> struct elem<T> {                              \
    static const int bits = W;                              \
    static const bool is_signed = S;                        \
    static i64 raw(const T& x) { return (i64)x; }           \
    static T make(i64 v) { return (T)v; }                   \
  };
HWGEN_ELEM_NATIVE(signed char, 8, true)
HWGEN_ELEM_NATIVE(unsigned char, 8, false)
HWGEN_ELEM_NATIVE(short, 16, true)
HWGEN_ELEM_NATIVE(unsigned short, 16, false)
HWGEN_ELEM_NATIVE(int, 32, true)
HWGEN_ELEM_NATIVE(unsigned int, 32, false)
HWGEN_ELEM_NATIVE(long long, 64, true)
#undef HWGEN_ELEM_NATIVE

// Shorthands: code of x, and a T holding code v.
template <class T> inline i64 raw(const T& x) { return elem<T>::raw(x); }
template <class T> inline T from_raw(i64 v) { return elem<T>::make(v); }

}  // namespace hwgen

#endif  // HWGEN_NUMERICS_H
