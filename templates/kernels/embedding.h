// embedding.h -- a lookup table read by integer ids (BERT's token embedding).
//
// Python counterpart: hwgen/ops/embedding.py (Embedding.simulate). The table is stored in the output type
// (requantised once by Embedding.params); each id copies one row. The simulator rejects ids >= vocab; here
// they are clamped to the last row so a bad id never reads outside the ROM.
// struct config {
//   typedef ... id_t;  typedef ... out_t;
//   static const int n_ids, vocab, dim;
// };
#ifndef HWGEN_EMBEDDING_H
#define HWGEN_EMBEDDING_H

#include "hwgen_numerics.h"

namespace hwgen {

template <class CONFIG_T>
void embedding(const typename CONFIG_T::id_t ids[CONFIG_T::n_ids],
               const typename CONFIG_T::out_t table[CONFIG_T::vocab * CONFIG_T::dim],
               typename CONFIG_T::out_t y[CONFIG_T::n_ids * CONFIG_T::dim]) {
#pragma HLS INLINE off
IDS:
  for (int t = 0; t < CONFIG_T::n_ids; t++) {
    int id = (int)raw(ids[t]);
    if (id >= CONFIG_T::vocab) id = CONFIG_T::vocab - 1;
  ROW:
    for (int d = 0; d < CONFIG_T::dim; d++) {
#pragma HLS PIPELINE II = 1
      y[t * CONFIG_T::dim + d] = table[id * CONFIG_T::dim + d];
    }
  }
}

}  // namespace hwgen

#endif
