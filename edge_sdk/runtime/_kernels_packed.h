/* The AVX2 / AVX-512 / AVX-512 VNNI GEMM on packed weights, included by _kernels.h (which defines the ISA
 * macros, EK_RESTRICT and EK_INLINE it uses).  Same contract as ek_gemm: C[p][o] = dot(P[p], W[o]). */
#ifndef EDGE_SDK_KERNELS_PACKED_H
#define EDGE_SDK_KERNELS_PACKED_H

/* ------------------------------------------------------------------------- */
/* Packed GEMM (AVX2, AVX-512, AVX-512 VNNI only)                            */
/* ------------------------------------------------------------------------- */

/* The reduction-along-k GEMM above ends every 4x4 block with 16 horizontal sums, which dominate when
 * kp is small (a 3-channel stem: kp = 32).  This one keeps output channels in the vector lanes instead:
 * the weights are packed per block of EK_PK_BLOCK output channels as Wp[block][kp/2][16][2] (two
 * consecutive k of 16 channels per 512-bit row), each pixel's pair of im2col values is broadcast, and
 * one vpdpwssd (or pmaddwd + add) accumulates 16 channels x 2 k.  No horizontal sums, and each store is
 * 16 finished accumulators.  int32 sums are exact in any order (the validator bounds them), so the result
 * equals ek_gemm bit for bit.  The wrapper builds Wp (emulator.pack_gemm_weights); other ISAs and
 * channel runs that do not start on a block boundary use ek_gemm. */
enum { EK_PK_BLOCK = 16 };

#if EK_X86_MULTIVERSION
/* Pixel p's im2col values 2kk and 2kk+1 as one int32 (memcpy: no aliasing or alignment assumption). */
EK_ALWAYS_INLINE int32_t ek_pk_pair(const int16_t *P, int kp, int p, int kk)
{
    int32_t v;
    memcpy(&v, P + (size_t)p * kp + 2 * kk, sizeof v);
    return v;
}
#define EK_PK_BCAST(P, kp, p, kk) _mm512_set1_epi32(ek_pk_pair((P), (kp), (p), (kk)))

/* R pixels (rows p .. p+R-1) x NB blocks of 16 channels; R and NB are constants at each use, so the
 * accumulators stay in registers (a run-time row count would spill them). */
#define EK_PK_TILE(DOT, R, NB, P, kp, kh, w0, blk, C, ldc, p, ob, m)                                          \
    do {                                                                                                       \
        __m512i acc_[NB][R];                                                                                   \
        int r_, b_, kk_;                                                                                       \
        for (b_ = 0; b_ < NB; b_++)                                                                            \
            for (r_ = 0; r_ < R; r_++) acc_[b_][r_] = _mm512_setzero_si512();                                  \
        for (kk_ = 0; kk_ < kh; kk_++) {                                                                       \
            __m512i w_[NB];                                                                                    \
            for (b_ = 0; b_ < NB; b_++) w_[b_] = _mm512_loadu_si512((w0) + (size_t)b_ * (blk) + (size_t)kk_ * 32); \
            for (r_ = 0; r_ < R; r_++) {                                                                       \
                const __m512i x_ = EK_PK_BCAST(P, kp, (p) + r_, kk_);                                          \
                for (b_ = 0; b_ < NB; b_++) acc_[b_][r_] = DOT(acc_[b_][r_], x_, w_[b_]);                      \
            }                                                                                                  \
        }                                                                                                      \
        for (r_ = 0; r_ < R; r_++)                                                                             \
            for (b_ = 0; b_ < NB; b_++)                                                                        \
                _mm512_mask_storeu_epi32((C) + (size_t)((p) + r_) * (ldc) + (ob) + b_ * EK_PK_BLOCK,           \
                                         b_ == NB - 1 ? (m) : (__mmask16)0xFFFF, acc_[b_][r_]);                \
    } while (0)

#define EK_DEFINE_PACKED(SUFFIX, ATTR, DOT)                                                                    \
    ATTR static void ek_gemm_packed_##SUFFIX(const int16_t *EK_RESTRICT P, const int16_t *EK_RESTRICT Wp,       \
                                             int32_t *EK_RESTRICT C, int np, int no, int kp, int ldc)            \
    {                                                                                                          \
        const int kh = kp / 2;                                                                                 \
        const size_t blk = (size_t)kh * 2 * EK_PK_BLOCK;                                                       \
        const __mmask16 full = (__mmask16)0xFFFF;                                                              \
        int ob = 0, p;                                                                                         \
        for (; ob + 2 * EK_PK_BLOCK <= no; ob += 2 * EK_PK_BLOCK) { /* 6 pixels x 32 channels */               \
            const int16_t *w0 = Wp + (size_t)(ob / EK_PK_BLOCK) * blk;                                         \
            for (p = 0; p + 6 <= np; p += 6) EK_PK_TILE(DOT, 6, 2, P, kp, kh, w0, blk, C, ldc, p, ob, full);    \
            for (; p < np; p++) EK_PK_TILE(DOT, 1, 2, P, kp, kh, w0, blk, C, ldc, p, ob, full);                 \
        }                                                                                                      \
        for (; ob < no; ob += EK_PK_BLOCK) { /* 12 pixels x 16 channels; a short last block is masked */       \
            const int16_t *w0 = Wp + (size_t)(ob / EK_PK_BLOCK) * blk;                                         \
            const __mmask16 m = no - ob >= EK_PK_BLOCK ? full : (__mmask16)((1u << (no - ob)) - 1);            \
            for (p = 0; p + 12 <= np; p += 12) EK_PK_TILE(DOT, 12, 1, P, kp, kh, w0, blk, C, ldc, p, ob, m);    \
            for (; p < np; p++) EK_PK_TILE(DOT, 1, 1, P, kp, kh, w0, blk, C, ldc, p, ob, m);                    \
        }                                                                                                      \
    }

#define EK_DOT_VNNI(a, x, w) _mm512_dpwssd_epi32((a), (x), (w))
#define EK_DOT_AVX512(a, x, w) _mm512_add_epi32((a), _mm512_madd_epi16((x), (w)))
EK_DEFINE_PACKED(avx512, EK_TARGET_AVX512, EK_DOT_AVX512)
EK_DEFINE_PACKED(vnni, EK_TARGET_VNNI, EK_DOT_VNNI)
/* AVX2: the same packed rows, read as two 256-bit halves of 8 channels x 2 k.  H halves (8 channels
 * each, from channel ob) x R pixels; ``rem`` channels remain from ob, so a short last half is masked. */
#define EK_PK2_TILE(R, H, P, kp, kh, w0, blk, C, ldc, p, ob, rem)                                             \
    do {                                                                                                       \
        __m256i acc_[H][R];                                                                                    \
        int r_, h_, kk_;                                                                                       \
        for (h_ = 0; h_ < H; h_++)                                                                             \
            for (r_ = 0; r_ < R; r_++) acc_[h_][r_] = _mm256_setzero_si256();                                  \
        for (kk_ = 0; kk_ < kh; kk_++) {                                                                       \
            __m256i w_[H];                                                                                     \
            for (h_ = 0; h_ < H; h_++)                                                                         \
                w_[h_] = _mm256_loadu_si256(                                                                   \
                    (const __m256i *)((w0) + (size_t)(h_ / 2) * (blk) + (size_t)kk_ * 32 + (h_ % 2) * 16));    \
            for (r_ = 0; r_ < R; r_++) {                                                                       \
                const __m256i x_ = _mm256_set1_epi32(ek_pk_pair((P), (kp), (p) + r_, kk_));           \
                for (h_ = 0; h_ < H; h_++) acc_[h_][r_] = _mm256_add_epi32(acc_[h_][r_], _mm256_madd_epi16(x_, w_[h_])); \
            }                                                                                                  \
        }                                                                                                      \
        for (r_ = 0; r_ < R; r_++)                                                                             \
            for (h_ = 0; h_ < H; h_++) {                                                                       \
                int32_t *dst_ = (C) + (size_t)((p) + r_) * (ldc) + (ob) + h_ * 8;                              \
                const int n_ = (rem) - h_ * 8;                                                                 \
                if (n_ >= 8)                                                                                   \
                    _mm256_storeu_si256((__m256i *)dst_, acc_[h_][r_]);                                        \
                else if (n_ > 0)                                                                               \
                    _mm256_maskstore_epi32(dst_, _mm256_cmpgt_epi32(_mm256_set1_epi32(n_),                     \
                                                                    _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)), \
                                           acc_[h_][r_]);                                                      \
            }                                                                                                  \
    } while (0)

EK_TARGET_AVX2 static void ek_gemm_packed_avx2(const int16_t *EK_RESTRICT P, const int16_t *EK_RESTRICT Wp,
                                              int32_t *EK_RESTRICT C, int np, int no, int kp, int ldc)
{
    const int kh = kp / 2;
    const size_t blk = (size_t)kh * 2 * EK_PK_BLOCK;
    int ob = 0, p;
    for (; ob + 2 * EK_PK_BLOCK <= no; ob += 2 * EK_PK_BLOCK) { /* 2 pixels x 32 channels */
        const int16_t *w0 = Wp + (size_t)(ob / EK_PK_BLOCK) * blk;
        for (p = 0; p + 2 <= np; p += 2) EK_PK2_TILE(2, 4, P, kp, kh, w0, blk, C, ldc, p, ob, 32);
        for (; p < np; p++) EK_PK2_TILE(1, 4, P, kp, kh, w0, blk, C, ldc, p, ob, 32);
    }
    for (; ob < no; ob += EK_PK_BLOCK) { /* 5 pixels x 16 channels */
        const int16_t *w0 = Wp + (size_t)(ob / EK_PK_BLOCK) * blk;
        const int rem = no - ob;
        for (p = 0; p + 5 <= np; p += 5) EK_PK2_TILE(5, 2, P, kp, kh, w0, blk, C, ldc, p, ob, rem);
        for (; p < np; p++) EK_PK2_TILE(1, 2, P, kp, kh, w0, blk, C, ldc, p, ob, rem);
    }
}
#endif

/* Runs the packed GEMM when this ISA has one (returns 1), else returns 0 and the caller uses ek_gemm. */
static int ek_gemm_packed(int isa, const int16_t *P, const int16_t *Wp, int32_t *C, int np, int no, int kp, int ldc)
{
#if EK_X86_MULTIVERSION
    if (isa == EK_ISA_VNNI) { ek_gemm_packed_vnni(P, Wp, C, np, no, kp, ldc); return 1; }
    if (isa == EK_ISA_AVX512) { ek_gemm_packed_avx512(P, Wp, C, np, no, kp, ldc); return 1; }
    if (isa == EK_ISA_AVX2) { ek_gemm_packed_avx2(P, Wp, C, np, no, kp, ldc); return 1; }
#endif
    (void)isa; (void)P; (void)Wp; (void)C; (void)np; (void)no; (void)kp; (void)ldc;
    return 0;
}

/* Whether ek_gemm_packed has a kernel for this ISA (the wrapper only packs weights when it does). */
EK_INLINE int ek_has_packed_gemm(int isa)
{
#if EK_X86_MULTIVERSION
    return isa == EK_ISA_VNNI || isa == EK_ISA_AVX512 || isa == EK_ISA_AVX2;
#else
    (void)isa;
    return 0;
#endif
}

#endif /* EDGE_SDK_KERNELS_PACKED_H */
