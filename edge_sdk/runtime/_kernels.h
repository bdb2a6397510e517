/* Integer kernels of the edge_sdk emulator (docs/datasheet.md section 2).
 *
 * Plain C99, written so GCC/Clang auto-vectorize the hot loops: the int16 x int16
 * -> int32 dot products of the convolution become pmaddwd / vpdpwssd on x86 and
 * smlal on aarch64.  On x86-64 with GCC >= 8 / Clang >= 8 the compute kernels (GEMM,
 * depthwise, requantizer) are also compiled for AVX2, AVX-512 and AVX-512 VNNI
 * (function multi-versioning with target attributes) and one variant is picked at
 * run time from cpuid; every other platform, and every other compiler, uses the
 * portable plain-C build only.
 *
 * Bit-exactness with edge_sdk/arith.py + runtime/reference.py:
 *   - accumulation is int32; the network validator guarantees it never overflows
 *     (worst case < 2^31) and the wrapper rejects codes above the layer's input max;
 *   - the rounding shift is exact on every int32 (uint32 magnitude arithmetic), i.e.
 *     equal to arith.round_shift (int64) followed by the int32 / uint8 clamp.
 *
 * Safety: these functions trust their arguments.  The Cython wrapper
 * (_emulator.pyx) validates every shape, stride and range before calling them.
 * No function keeps state between calls (thread-safe); scratch is malloc'ed per
 * call and a failed malloc is reported as EK_ERR_NOMEM.
 */
#ifndef EDGE_SDK_KERNELS_H
#define EDGE_SDK_KERNELS_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(_MSC_VER)
#define EK_RESTRICT __restrict
#define EK_INLINE static __inline
#else
#define EK_RESTRICT __restrict__
#define EK_INLINE static inline
#endif

#if defined(__GNUC__)
#define EK_ALWAYS_INLINE static inline __attribute__((always_inline))
#define EK_MAYBE_UNUSED __attribute__((unused))
#define EK_NOINLINE __attribute__((noinline))
#else
#define EK_NOINLINE
#define EK_ALWAYS_INLINE EK_INLINE
#define EK_MAYBE_UNUSED
#endif

#if defined(__x86_64__) && defined(__GNUC__) && \
    ((defined(__clang__) && __clang_major__ >= 8) || (!defined(__clang__) && __GNUC__ >= 8))
#define EK_X86_MULTIVERSION 1
#if defined(__clang__)
#define EK_WIDTH512 /* clang has no prefer-vector-width in target attributes */
#else
#define EK_WIDTH512 ",prefer-vector-width=512"
#endif
#define EK_ISA_AVX2_FLAGS "avx2,fma,bmi,bmi2,popcnt"
#define EK_ISA_AVX512_FLAGS EK_ISA_AVX2_FLAGS ",avx512f,avx512bw,avx512vl,avx512dq,avx512cd"
#define EK_TARGET_AVX2 __attribute__((target(EK_ISA_AVX2_FLAGS)))
#define EK_TARGET_AVX512 __attribute__((target(EK_ISA_AVX512_FLAGS EK_WIDTH512)))
#define EK_TARGET_VNNI __attribute__((target(EK_ISA_AVX512_FLAGS ",avx512vnni" EK_WIDTH512)))
#include <immintrin.h>
#else
#define EK_X86_MULTIVERSION 0
#endif

enum { EK_OK = 0, EK_ERR_NOMEM = -1, EK_ERR_RANGE = -2 };
enum { EK_ISA_DEFAULT = 0, EK_ISA_AVX2 = 1, EK_ISA_AVX512 = 2, EK_ISA_VNNI = 3, EK_ISA_COUNT = 4 };

static const char *const ek_isa_names[EK_ISA_COUNT] = {"default", "avx2", "avx512", "avx512vnni"};

/* Reads the CPU features once (the extension calls it at import, under the import lock). */
EK_INLINE void ek_init(void)
{
#if EK_X86_MULTIVERSION
    __builtin_cpu_init();
#endif
}

/* Whether this CPU (and OS) can run kernel variant ``isa`` (after ek_init). */
EK_INLINE int ek_isa_supported(int isa)
{
    if (isa == EK_ISA_DEFAULT) return 1;
#if EK_X86_MULTIVERSION
    if (isa == EK_ISA_AVX2) return !!__builtin_cpu_supports("avx2");
    int avx512 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("avx512f") &&
                 __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
                 __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512cd");
    if (isa == EK_ISA_AVX512) return !!avx512;
    if (isa == EK_ISA_VNNI) return avx512 && __builtin_cpu_supports("avx512vnni");
#endif
    return 0;
}

/* The fastest variant this CPU runs. */
EK_INLINE int ek_best_isa(void)
{
    int isa;
    for (isa = EK_ISA_COUNT - 1; isa > 0; isa--)
        if (ek_isa_supported(isa)) return isa;
    return EK_ISA_DEFAULT;
}

/* ------------------------------------------------------------------------- */
/* Requantizer (arith.round_shift + arith.requantize)                        */
/* ------------------------------------------------------------------------- */

/* The requantizer on int32 values.  Exact for every int32 ``v`` and 0 <= shift <= 30:
 * the magnitude plus the rounding half stays below 2^32 in uint32 arithmetic. */
EK_ALWAYS_INLINE int32_t ek_rq_raw(int32_t v, uint32_t half, int shift, int floor_mode)
{
    uint32_t m, q;
    if (floor_mode) return v >> shift; /* arithmetic shift: floor */
    m = v < 0 ? 0u - (uint32_t)v : (uint32_t)v;
    q = (m + half) >> shift;
    return v < 0 ? (int32_t)(0u - q) : (int32_t)q;
}

/* "act": clamp(R(v), 0, act_max).  A negative v rounds to <= 0 either way, so only v > 0 is shifted. */
EK_ALWAYS_INLINE uint8_t ek_rq_act(int32_t v, uint32_t half, int shift, int act_max)
{
    uint32_t q = ((uint32_t)v + half) >> shift;
    return (uint8_t)(v <= 0 ? 0 : (q > (uint32_t)act_max ? (uint32_t)act_max : q));
}

EK_ALWAYS_INLINE uint8_t ek_rq_act_floor(int32_t v, int shift, int act_max)
{
    int32_t q = v >> shift;
    return (uint8_t)(q < 0 ? 0 : (q > act_max ? act_max : q));
}

EK_INLINE uint32_t ek_half(int shift) { return shift ? (uint32_t)1 << (shift - 1) : 0u; }

/* The requantizer over n contiguous int32 values -> codes (uint8, clamp 0..act_max) or raw int32. */
EK_ALWAYS_INLINE void ek_requant_flat_body(const int32_t *EK_RESTRICT acc, size_t n, int shift, int floor_mode,
                                           int act_max, int raw, uint8_t *EK_RESTRICT out_u8,
                                           int32_t *EK_RESTRICT out_i32)
{
    const uint32_t half = ek_half(shift);
    size_t i;
    if (raw) {
        for (i = 0; i < n; i++) out_i32[i] = ek_rq_raw(acc[i], half, shift, floor_mode);
    } else if (floor_mode) {
        for (i = 0; i < n; i++) out_u8[i] = ek_rq_act_floor(acc[i], shift, act_max);
    } else {
        for (i = 0; i < n; i++) out_u8[i] = ek_rq_act(acc[i], half, shift, act_max);
    }
}

/* acc[n][chn] += bias[c], then the requantizer over all n*chn values, both [n][chn].  Two passes because
 * a per-pixel loop over chn channels never reaches the vector body when chn is below the vector length
 * (64 codes with AVX-512): ResNet-8's 16- and 32-channel layers ran the scalar epilogue only. */
EK_ALWAYS_INLINE void ek_requant_body(int32_t *EK_RESTRICT acc, int n, int chn, const int32_t *EK_RESTRICT bias,
                                      int shift, int floor_mode, int act_max, int raw, uint8_t *EK_RESTRICT out_u8,
                                      int32_t *EK_RESTRICT out_i32)
{
    int p, c;
    for (p = 0; p < n; p++) {
        int32_t *a = acc + (size_t)p * chn;
        for (c = 0; c < chn; c++) a[c] += bias[c];
    }
    ek_requant_flat_body(acc, (size_t)n * chn, shift, floor_mode, act_max, raw, out_u8, out_i32);
}

/* ------------------------------------------------------------------------- */
/* Band staging and im2col                                                   */
/* ------------------------------------------------------------------------- */

/* uint8 band (rows, w, c) -> int16 (pt + rows + pb, pl + w + pr, c) with zero borders (depthwise). */
EK_NOINLINE static void ek_pad_band(const uint8_t *EK_RESTRICT band, int rows, int w, int c, int pt, int pb, int pl, int pr,
                        int16_t *EK_RESTRICT xp)
{
    size_t wp = (size_t)(pl + w + pr), rowlen = wp * (size_t)c, inner = (size_t)w * (size_t)c;
    int r;
    memset(xp, 0, (size_t)pt * rowlen * sizeof(int16_t));
    for (r = 0; r < rows; r++) {
        int16_t *dst = xp + (size_t)(pt + r) * rowlen;
        const uint8_t *src = band + (size_t)r * inner;
        size_t i;
        memset(dst, 0, (size_t)pl * c * sizeof(int16_t));
        for (i = 0; i < inner; i++) dst[(size_t)pl * c + i] = src[i];
        memset(dst + (size_t)(pl + w) * c, 0, (size_t)pr * c * sizeof(int16_t));
    }
    memset(xp + (size_t)(pt + rows) * rowlen, 0, (size_t)pb * rowlen * sizeof(int16_t));
}

/* Largest code of a uint8 buffer. */
EK_NOINLINE static int ek_max_u8(const uint8_t *EK_RESTRICT x, size_t n)
{
    uint8_t m = 0;
    size_t i;
    for (i = 0; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
}

/* uint8 codes -> int16 (a conversion loop: vectorized, and never turned into a memcpy call). */
EK_ALWAYS_INLINE void ek_widen(int16_t *EK_RESTRICT dst, const uint8_t *EK_RESTRICT src, int n)
{
    int j;
    for (j = 0; j < n; j++) dst[j] = src[j];
}

/* Patches of output pixels p0 .. p0+n-1 (row-major over out_w) into P[n][kp], read straight from the
 * uint8 band (in_rows, w, cb): per pixel the (ky, kx, i) window of band channels c_off .. c_off+gi-1,
 * zero where the window leaves the band (pt / pl virtual rows / columns before it, the rest after it).
 * Columns k*k*gi .. kp-1 of P are left as they are (zero-initialised by the caller). */
EK_NOINLINE static void ek_im2col(const uint8_t *EK_RESTRICT band, int in_rows, int w, int cb, int pt, int pl, int k, int s,
                      int out_w, int p0, int n, int c_off, int gi, int kp, int16_t *EK_RESTRICT P)
{
    int i, y = p0 / out_w, x = p0 % out_w;
    const int seg = k * gi;
    for (i = 0; i < n; i++) {
        int16_t *dst = P + (size_t)i * kp;
        const int x0 = x * s - pl;
        const int inside = x0 >= 0 && x0 + k <= w;
        int ky, kx;
        for (ky = 0; ky < k; ky++, dst += seg) {
            const int r = y * s + ky - pt;
            const uint8_t *row;
            if (r < 0 || r >= in_rows) {
                memset(dst, 0, (size_t)seg * sizeof(int16_t));
                continue;
            }
            row = band + (size_t)r * w * cb + c_off;
            if (inside && gi == cb) {
                ek_widen(dst, row + (size_t)x0 * cb, seg);
                continue;
            }
            for (kx = 0; kx < k; kx++) {
                const int col = x0 + kx;
                if (col < 0 || col >= w) memset(dst + kx * gi, 0, (size_t)gi * sizeof(int16_t));
                else ek_widen(dst + kx * gi, row + (size_t)col * cb, gi);
            }
        }
        if (++x == out_w) {
            x = 0;
            y++;
        }
    }
}

/* ------------------------------------------------------------------------- */
/* GEMM: C[p][o] = dot(P[p][0..kp), W[o][0..kp)), p < np (a multiple of 4)  */
/* ------------------------------------------------------------------------- */

EK_ALWAYS_INLINE void ek_gemm_body(const int16_t *EK_RESTRICT P, const int16_t *EK_RESTRICT W,
                                   int32_t *EK_RESTRICT C, int np, int no, int kp, int ldc)
{
    int o = 0, p, k;
    for (; o + 4 <= no; o += 4) {
        const int16_t *w0 = W + (size_t)o * kp, *w1 = w0 + kp, *w2 = w1 + kp, *w3 = w2 + kp;
        for (p = 0; p < np; p += 4) {
            const int16_t *x0 = P + (size_t)p * kp, *x1 = x0 + kp, *x2 = x1 + kp, *x3 = x2 + kp;
            int32_t a00 = 0, a01 = 0, a02 = 0, a03 = 0, a10 = 0, a11 = 0, a12 = 0, a13 = 0;
            int32_t a20 = 0, a21 = 0, a22 = 0, a23 = 0, a30 = 0, a31 = 0, a32 = 0, a33 = 0;
            for (k = 0; k < kp; k++) {
                int32_t v0 = x0[k], v1 = x1[k], v2 = x2[k], v3 = x3[k];
                int32_t u0 = w0[k], u1 = w1[k], u2 = w2[k], u3 = w3[k];
                a00 += v0 * u0; a01 += v0 * u1; a02 += v0 * u2; a03 += v0 * u3;
                a10 += v1 * u0; a11 += v1 * u1; a12 += v1 * u2; a13 += v1 * u3;
                a20 += v2 * u0; a21 += v2 * u1; a22 += v2 * u2; a23 += v2 * u3;
                a30 += v3 * u0; a31 += v3 * u1; a32 += v3 * u2; a33 += v3 * u3;
            }
            int32_t *c0 = C + (size_t)p * ldc + o, *c1 = c0 + ldc, *c2 = c1 + ldc, *c3 = c2 + ldc;
            c0[0] = a00; c0[1] = a01; c0[2] = a02; c0[3] = a03;
            c1[0] = a10; c1[1] = a11; c1[2] = a12; c1[3] = a13;
            c2[0] = a20; c2[1] = a21; c2[2] = a22; c2[3] = a23;
            c3[0] = a30; c3[1] = a31; c3[2] = a32; c3[3] = a33;
        }
    }
    for (; o < no; o++) {
        const int16_t *w0 = W + (size_t)o * kp;
        for (p = 0; p < np; p += 4) {
            const int16_t *x0 = P + (size_t)p * kp, *x1 = x0 + kp, *x2 = x1 + kp, *x3 = x2 + kp;
            int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
            for (k = 0; k < kp; k++) {
                int32_t u0 = w0[k];
                a0 += x0[k] * u0; a1 += x1[k] * u0; a2 += x2[k] * u0; a3 += x3[k] * u0;
            }
            C[(size_t)p * ldc + o] = a0;
            C[(size_t)(p + 1) * ldc + o] = a1;
            C[(size_t)(p + 2) * ldc + o] = a2;
            C[(size_t)(p + 3) * ldc + o] = a3;
        }
    }
}

/* ------------------------------------------------------------------------- */
/* Depthwise: acc[p][c] = sum_{ky,kx} xp[y*s+ky][x*s+kx][c_off+c] * wd[ky*k+kx][c] */
/* ------------------------------------------------------------------------- */

EK_ALWAYS_INLINE void ek_depthwise_body(const int16_t *EK_RESTRICT xp, int wp, int cb, int k, int s, int out_w,
                                        int p0, int n, int c_off, int chn, const int16_t *EK_RESTRICT wd, int ldw,
                                        int32_t *EK_RESTRICT acc)
{
    int i, c, ky, kx, y = p0 / out_w, x = p0 % out_w;
    for (i = 0; i < n; i++) {
        int32_t *a = acc + (size_t)i * chn;
        for (c = 0; c < chn; c++) a[c] = 0;
        for (ky = 0; ky < k; ky++) {
            for (kx = 0; kx < k; kx++) {
                const int16_t *src = xp + ((size_t)(y * s + ky) * wp + (size_t)(x * s + kx)) * cb + c_off;
                const int16_t *wv = wd + (size_t)(ky * k + kx) * ldw;
                for (c = 0; c < chn; c++) a[c] += (int32_t)src[c] * wv[c];
            }
        }
        if (++x == out_w) {
            x = 0;
            y++;
        }
    }
}

/* The compiled variants and their dispatch. */
#define EK_DEFINE_VARIANTS(SUFFIX, ATTR)                                                                        \
    ATTR static void ek_gemm_##SUFFIX(const int16_t *EK_RESTRICT P, const int16_t *EK_RESTRICT W,                \
                                      int32_t *EK_RESTRICT C, int np, int no, int kp, int ldc)                   \
    {                                                                                                          \
        ek_gemm_body(P, W, C, np, no, kp, ldc);                                                                \
    }                                                                                                          \
    ATTR static void ek_depthwise_##SUFFIX(const int16_t *EK_RESTRICT xp, int wp, int cb, int k, int s,          \
                                           int out_w, int p0, int n, int c_off, int chn,                        \
                                           const int16_t *EK_RESTRICT wd, int ldw, int32_t *EK_RESTRICT acc)     \
    {                                                                                                          \
        ek_depthwise_body(xp, wp, cb, k, s, out_w, p0, n, c_off, chn, wd, ldw, acc);                           \
    }                                                                                                          \
    ATTR EK_MAYBE_UNUSED static void ek_requant_##SUFFIX(                                                     \
        int32_t *EK_RESTRICT acc, int n, int chn, const int32_t *EK_RESTRICT bias, int shift, int floor_mode,  \
        int act_max, int raw, uint8_t *EK_RESTRICT out_u8, int32_t *EK_RESTRICT out_i32)                       \
    {                                                                                                          \
        ek_requant_body(acc, n, chn, bias, shift, floor_mode, act_max, raw, out_u8, out_i32);                  \
    }

EK_DEFINE_VARIANTS(default, )
#if EK_X86_MULTIVERSION
EK_DEFINE_VARIANTS(avx2, EK_TARGET_AVX2)
EK_DEFINE_VARIANTS(avx512, EK_TARGET_AVX512)
EK_DEFINE_VARIANTS(vnni, EK_TARGET_VNNI)
#endif

static void ek_gemm(int isa, const int16_t *P, const int16_t *W, int32_t *C, int np, int no, int kp, int ldc)
{
#if EK_X86_MULTIVERSION
    if (isa == EK_ISA_VNNI) { ek_gemm_vnni(P, W, C, np, no, kp, ldc); return; }
    if (isa == EK_ISA_AVX512) { ek_gemm_avx512(P, W, C, np, no, kp, ldc); return; }
    if (isa == EK_ISA_AVX2) { ek_gemm_avx2(P, W, C, np, no, kp, ldc); return; }
#endif
    (void)isa;
    ek_gemm_default(P, W, C, np, no, kp, ldc);
}

static void ek_depthwise(int isa, const int16_t *xp, int wp, int cb, int k, int s, int out_w, int p0, int n,
                         int c_off, int chn, const int16_t *wd, int ldw, int32_t *acc)
{
#if EK_X86_MULTIVERSION
    if (isa == EK_ISA_VNNI) { ek_depthwise_vnni(xp, wp, cb, k, s, out_w, p0, n, c_off, chn, wd, ldw, acc); return; }
    if (isa == EK_ISA_AVX512) { ek_depthwise_avx512(xp, wp, cb, k, s, out_w, p0, n, c_off, chn, wd, ldw, acc); return; }
    if (isa == EK_ISA_AVX2) { ek_depthwise_avx2(xp, wp, cb, k, s, out_w, p0, n, c_off, chn, wd, ldw, acc); return; }
#endif
    (void)isa;
    ek_depthwise_default(xp, wp, cb, k, s, out_w, p0, n, c_off, chn, wd, ldw, acc);
}

static void ek_requant(int isa, int32_t *acc, int n, int chn, const int32_t *bias, int shift, int floor_mode,
                       int act_max, int raw, uint8_t *out_u8, int32_t *out_i32)
{
#if EK_X86_MULTIVERSION
    if (isa == EK_ISA_VNNI || isa == EK_ISA_AVX512) {
        ek_requant_avx512(acc, n, chn, bias, shift, floor_mode, act_max, raw, out_u8, out_i32);
        return;
    }
    if (isa == EK_ISA_AVX2) { ek_requant_avx2(acc, n, chn, bias, shift, floor_mode, act_max, raw, out_u8, out_i32); return; }
#endif
    (void)isa;
    ek_requant_default(acc, n, chn, bias, shift, floor_mode, act_max, raw, out_u8, out_i32);
}

#include "_kernels_packed.h" /* ek_gemm_packed: the AVX2 / AVX-512 GEMM on packed weights */

/* ------------------------------------------------------------------------- */
/* One conv tile                                                             */
/* ------------------------------------------------------------------------- */

typedef struct {
    int in_rows, in_w, in_c;                          /* the band (uint8, C-contiguous) */
    int pad_top, pad_bottom, pad_left, pad_right;     /* virtual zero rows / columns around it */
    int k, s;                                         /* kernel, stride */
    int out_rows, out_w, chn;                         /* the output block */
    int ch0;                                          /* absolute first output channel of the tile */
    int gi, go;                                       /* input / output channels per conv group */
    int in_ch0;                                       /* absolute first input channel of the band */
    int depthwise;                                    /* gi == go == 1: weights are wd[k*k][ldw] */
    int kp;                                           /* GEMM weights: W[chn][kp], kp % 32 == 0 */
    int ldw;                                          /* depthwise weights: row stride */
    int shift, floor_mode, act_max, raw;              /* requantizer */
    int code_max;                                     /* largest input code allowed */
    int isa;                                          /* kernel variant */
    int chunk_bytes;                                  /* im2col working set per step */
} ek_conv_params;

/* Runs one conv tile; out is uint8 or int32 (out_rows, out_w, chn).
 * W: GEMM weights of the tile's channels (chn rows of kp) or depthwise weights
 * (k*k rows of ldw, the tile's first channel first); bias: the tile's chn biases.
 * Wp: NULL, or the layer's GEMM weights packed for ek_gemm_packed (all blocks, from absolute channel 0). */
static int ek_conv_tile(const ek_conv_params *prm, const uint8_t *band, const int16_t *W, const int16_t *Wp,
                        const int32_t *bias, void *out)
{
    const int k = prm->k, s = prm->s, out_w = prm->out_w, chn = prm->chn;
    const int hp = prm->pad_top + prm->in_rows + prm->pad_bottom;
    const int wp = prm->pad_left + prm->in_w + prm->pad_right;
    const int cb = prm->in_c;
    const int npix = prm->out_rows * out_w;
    int16_t *xp = NULL, *P = NULL;
    int32_t *acc = NULL;
    int chunk, p0, rc = EK_OK;
    uint8_t *out_u8 = prm->raw ? NULL : (uint8_t *)out;
    int32_t *out_i32 = prm->raw ? (int32_t *)out : NULL;

    if (ek_max_u8(band, (size_t)prm->in_rows * prm->in_w * cb) > prm->code_max) return EK_ERR_RANGE;
    if (prm->depthwise) {
        xp = (int16_t *)malloc(((size_t)hp * wp * cb + 1) * sizeof(int16_t));
        if (!xp) return EK_ERR_NOMEM;
        ek_pad_band(band, prm->in_rows, prm->in_w, cb, prm->pad_top, prm->pad_bottom, prm->pad_left,
                    prm->pad_right, xp);
        chunk = 64;
        acc = (int32_t *)malloc((size_t)chunk * chn * sizeof(int32_t));
        if (!acc) { rc = EK_ERR_NOMEM; goto done; }
        for (p0 = 0; p0 < npix; p0 += chunk) {
            int n = npix - p0 < chunk ? npix - p0 : chunk;
            int c_off = prm->ch0 - prm->in_ch0;
            ek_depthwise(prm->isa, xp, wp, cb, k, s, out_w, p0, n, c_off, chn, W, prm->ldw, acc);
            ek_requant(prm->isa, acc, n, chn, bias, prm->shift, prm->floor_mode, prm->act_max, prm->raw,
                       out_u8 ? out_u8 + (size_t)p0 * chn : NULL, out_i32 ? out_i32 + (size_t)p0 * chn : NULL);
        }
        goto done;
    }
    {
        const int kp = prm->kp;
        chunk = prm->chunk_bytes / (kp * (int)sizeof(int16_t));
        chunk = chunk < 4 ? 4 : chunk & ~3;
        if (chunk > ((npix + 3) & ~3)) chunk = (npix + 3) & ~3;
        P = (int16_t *)calloc((size_t)chunk * kp, sizeof(int16_t));
        acc = (int32_t *)malloc((size_t)chunk * chn * sizeof(int32_t));
        if (!P || !acc) { rc = EK_ERR_NOMEM; goto done; }
        for (p0 = 0; p0 < npix; p0 += chunk) {
            int n = npix - p0 < chunk ? npix - p0 : chunk;
            int n4 = (n + 3) & ~3;
            int o = 0;
            while (o < chn) {
                /* a run of output channels in one conv group */
                int g = (prm->ch0 + o) / prm->go;
                int end = (g + 1) * prm->go - prm->ch0;
                int c_off = g * prm->gi - prm->in_ch0;
                if (end > chn) end = chn;
                ek_im2col(band, prm->in_rows, prm->in_w, cb, prm->pad_top, prm->pad_left, k, s, out_w, p0, n, c_off,
                          prm->gi, kp, P);
                const int oa = prm->ch0 + o; /* absolute channel: packed blocks start at multiples of 16 */
                if (!(Wp && oa % EK_PK_BLOCK == 0 &&
                      ek_gemm_packed(prm->isa, P, Wp + (size_t)(oa / EK_PK_BLOCK) * kp * EK_PK_BLOCK, acc + o, n,
                                     end - o, kp, chn)))
                    ek_gemm(prm->isa, P, W + (size_t)o * kp, acc + o, n4, end - o, kp, chn);
                o = end;
            }
            ek_requant(prm->isa, acc, n, chn, bias, prm->shift, prm->floor_mode, prm->act_max, prm->raw,
                       out_u8 ? out_u8 + (size_t)p0 * chn : NULL, out_i32 ? out_i32 + (size_t)p0 * chn : NULL);
        }
    }
done:
    free(xp);
    free(P);
    free(acc);
    return rc;
}

/* ------------------------------------------------------------------------- */
/* Max-pool and add                                                          */
/* ------------------------------------------------------------------------- */

/* 2x2/2 max-pool of codes: band (2*out_rows, w, c) -> (out_rows, w/2, c); an odd last column is dropped. */
static void ek_maxpool(const uint8_t *EK_RESTRICT band, int out_rows, int w, int c, uint8_t *EK_RESTRICT out)
{
    int r, x, ch, wo = w / 2;
    size_t row = (size_t)w * c;
    for (r = 0; r < out_rows; r++) {
        const uint8_t *a = band + (size_t)(2 * r) * row, *b = a + row;
        uint8_t *o = out + (size_t)r * wo * c;
        for (x = 0; x < wo; x++) {
            const uint8_t *a0 = a + (size_t)(2 * x) * c, *a1 = a0 + c, *b0 = b + (size_t)(2 * x) * c, *b1 = b0 + c;
            uint8_t *ox = o + (size_t)x * c;
            for (ch = 0; ch < c; ch++) {
                uint8_t m0 = a0[ch] > a1[ch] ? a0[ch] : a1[ch];
                uint8_t m1 = b0[ch] > b1[ch] ? b0[ch] : b1[ch];
                ox[ch] = m0 > m1 ? m0 : m1;
            }
        }
    }
}

/* acc = a*ma + b*mb over n codes (|acc| < 2^25 for 8-bit codes and 16-bit multipliers), then the requantizer. */
static void ek_add(const uint8_t *EK_RESTRICT a, const uint8_t *EK_RESTRICT b, size_t n, int ma, int mb, int shift,
                   int floor_mode, int act_max, int raw, uint8_t *EK_RESTRICT out_u8, int32_t *EK_RESTRICT out_i32)
{
    const uint32_t half = ek_half(shift);
    size_t i;
    if (raw) {
        for (i = 0; i < n; i++) out_i32[i] = ek_rq_raw((int32_t)a[i] * ma + (int32_t)b[i] * mb, half, shift, floor_mode);
    } else if (floor_mode) {
        for (i = 0; i < n; i++) out_u8[i] = ek_rq_act_floor((int32_t)a[i] * ma + (int32_t)b[i] * mb, shift, act_max);
    } else {
        for (i = 0; i < n; i++) out_u8[i] = ek_rq_act((int32_t)a[i] * ma + (int32_t)b[i] * mb, half, shift, act_max);
    }
}

/* The requantizer alone over n int32 accumulators (kernel-level tests). */
static void ek_requant_flat(const int32_t *acc, size_t n, int shift, int floor_mode, int act_max, int raw,
                            uint8_t *out_u8, int32_t *out_i32)
{
    ek_requant_flat_body(acc, n, shift, floor_mode, act_max, raw, out_u8, out_i32);
}

#endif /* EDGE_SDK_KERNELS_H */
