// embedding.cu: rows of a table gathered by u32 ids (i64 ids are narrowed on the host,
// as the CPU backend's widen_ids checks them).
// defines: embedding_{f32, bf16, f16}
// No FPO (cost::embedding): reads each id once and each gathered row, writes each output.
// An id past the table writes a zero row and reads no table bytes.
#include "tally_count.cuh"
#include "tally_dtype.cuh"

// ids (n_ids), table (vocab, dim) -> y (n_ids, dim); grid = n_ids blocks.
template <typename T>
__device__ void embedding_body(const unsigned* ids, const T* table, T* y, unsigned long long vocab,
                               unsigned long long dim, unsigned long long* counters) {
    const unsigned long long id = ids[blockIdx.x];
    const bool inside = id < vocab;
    T* yr = y + blockIdx.x * dim;
    unsigned long long mine = 0;
    for (unsigned long long i = threadIdx.x; i < dim; i += blockDim.x) {
        yr[i] = inside ? table[id * dim + i] : from_f32<T>(0.0f);
        ++mine;
    }
    TallyWork w = tally_elems(0, 0, 0, 0, 0, inside ? mine * sizeof(T) : 0, mine * sizeof(T));
    if (threadIdx.x == 0) w.c[TALLY_BYTES_READ] += sizeof(unsigned);  // the id
    tally_flush(w, counters);
}

// Stamps one dtype: ids (n_ids), table (vocab, dim) -> y (n_ids, dim)
#define EMBEDDING(T, SUFFIX)                                                                     \
    extern "C" __global__ void embedding_##SUFFIX(const unsigned* ids, const T* table, T* y,    \
                                                  unsigned long long vocab,                     \
                                                  unsigned long long dim,                       \
                                                  unsigned long long* counters) {               \
        embedding_body(ids, table, y, vocab, dim, counters);                                    \
    }

EMBEDDING(float, f32)
EMBEDDING(bf16, bf16)
EMBEDDING(f16, f16)
