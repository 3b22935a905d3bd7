// patch_embed.h -- ViT patchify: a convolution with stride = kernel and no padding, computed as im2col +
// linear.h's tiled core (hwgen/ops/patch_embed.py).  Input one image [C][H][W]; output NCHW like the ONNX
// Conv: [n_out][H/kh][W/kw].  Weight [C*kh*kw][n_out] (the im2col constant the lowering creates, minus its
// zero points), bias / m0 / shift per output channel, all from PatchEmbed.params() == Linear.params().
//
// struct config: every field of linear.h's config, with n_rows = (height/kernel_h) * (width/kernel_w)
// (patches, row-major over the patch grid) and n_in = channels * kernel_h * kernel_w, plus
//   static const int channels, height, width, kernel_h, kernel_w;
#ifndef HWGEN_PATCH_EMBED_H
#define HWGEN_PATCH_EMBED_H

#include "linear.h"

namespace hwgen {

// im2col addressing: row r = patch (gy, gx); feature i = (c, dy, dx); output channel-major (NCHW).
struct patch_addr {
  template <class C> static int x_index(int r, int i) {
    const int gw = C::width / C::kernel_w;
    const int gy = r / gw, gx = r % gw;
    const int c = i / (C::kernel_h * C::kernel_w);
    const int rem = i % (C::kernel_h * C::kernel_w);
    const int dy = rem / C::kernel_w, dx = rem % C::kernel_w;
    return (c * C::height + gy * C::kernel_h + dy) * C::width + gx * C::kernel_w + dx;
  }
  template <class C> static int y_index(int r, int o) { return o * C::n_rows + r; }
};

template <class CONFIG_T>
void patch_embed(const typename CONFIG_T::in_t x[CONFIG_T::channels * CONFIG_T::height * CONFIG_T::width],
                 typename CONFIG_T::out_t y[CONFIG_T::n_out * CONFIG_T::n_rows],
                 const typename CONFIG_T::weight_t w[CONFIG_T::n_in * CONFIG_T::n_out],
                 const typename CONFIG_T::bias_t b[CONFIG_T::n_out],
                 const typename CONFIG_T::mult_t m0[CONFIG_T::n_out],
                 const typename CONFIG_T::shift_t shift[CONFIG_T::n_out]) {
#pragma HLS INLINE off
  static_assert(CONFIG_T::height % CONFIG_T::kernel_h == 0 && CONFIG_T::width % CONFIG_T::kernel_w == 0,
                "image size must be a multiple of the patch size");
  static_assert(CONFIG_T::n_rows == (CONFIG_T::height / CONFIG_T::kernel_h) * (CONFIG_T::width / CONFIG_T::kernel_w),
                "n_rows must be the number of patches");
  static_assert(CONFIG_T::n_in == CONFIG_T::channels * CONFIG_T::kernel_h * CONFIG_T::kernel_w,
                "n_in must be channels * kernel_h * kernel_w");
  gemm_tiled<CONFIG_T, patch_addr, 0, true, true>(x, y, w, b, m0, shift);
}

}  // namespace hwgen

#endif  // HWGEN_PATCH_EMBED_H
