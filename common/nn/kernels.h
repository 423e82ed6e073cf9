// Element-wise and row-wise kernels of the ViT step, with run-time ISA dispatch.
//
// Matmuls are not here: they go to gemm() (nn/gemm.h: our AVX-512 GEMM on CPUs that have it,
// OpenBLAS sgemm elsewhere; see nn/matmul.h). Everything else is here, in three
// implementations that must agree: kernels_scalar.c (the reference), kernels_avx2.c (AVX2 +
// FMA) and kernels_avx512.c (AVX-512F/BW/DQ/VL). isa.c picks one at start-up from the CPU's
// features; CATLIP_ISA=scalar|avx2|avx512 forces one (core/cpu.h).
//
// Conventions (as in llm.c): outputs first, then inputs, then sizes. Rows are contiguous,
// row-major. Kernels are single-threaded over the range they are given; the caller splits
// rows (or elements) across the compute pool, so the result is the same for a given split.
// "+=" in a comment means the kernel accumulates into that output; otherwise it overwrites.
// In-place calls are allowed only where a comment says so.
#pragma once
#include <stddef.h>

struct kernels {
    const char *name;  // "scalar", "avx2", "avx512"

    // LayerNorm over each of N rows of C values, eps = 1e-6 (timm's ViT):
    //   mean = sum(x)/C, var = sum((x-mean)^2)/C, rstd = 1/sqrt(var + eps)
    //   out = (x - mean) * rstd * weight + bias
    void (*layernorm_forward)(float *out,        // (N, C)
                              float *mean,       // (N)
                              float *rstd,       // (N)
                              const float *inp,  // (N, C)
                              const float *weight, const float *bias,  // (C)
                              long N, int C);
    // dinp overwritten; dweight += ; dbias += . dinp may alias dout.
    void (*layernorm_backward)(float *dinp,                   // (N, C)
                               float *dweight, float *dbias,  // (C)
                               const float *dout,             // (N, C)
                               const float *inp,              // (N, C)
                               const float *weight,           // (C)
                               const float *mean, const float *rstd,  // (N)
                               long N, int C);

    // Exact GELU: out = x * 0.5 * (1 + erf(x / sqrt(2))). In-place allowed.
    void (*gelu_forward)(float *out, const float *inp, long n);
    // dinp = dout * gelu'(inp), overwritten. dinp may alias dout.
    void (*gelu_backward)(float *dinp, const float *inp, const float *dout, long n);

    // Row softmax over `cols` values (attention: scores already scaled). In-place allowed.
    void (*softmax_forward)(float *probs, const float *scores, long rows, int cols);
    // dscores = scale * probs * (dprobs - sum_j(probs * dprobs)), overwritten; may alias dprobs.
    void (*softmax_backward)(float *dscores, const float *probs, const float *dprobs,
                             long rows, int cols, float scale);

    // out[n, c] += bias[c]
    void (*add_bias)(float *out, const float *bias, long N, int C);
    // dbias[c] += sum_n dout[n, c]
    void (*bias_backward)(float *dbias, const float *dout, long N, int C);
    // out[i] = a[i] + b[i]; out may alias a or b.
    void (*add)(float *out, const float *a, const float *b, long n);

    // BCE with logits, summed over the n elements: returns sum_i l_i in double, with
    //   l_i = max(x,0) - x*y + log(1 + exp(-|x|))
    // and writes dlogits[i] = (sigmoid(x_i) - y_i) * grad_scale (overwritten).
    double (*bce_with_logits)(float *dlogits, const float *logits, const float *targets,
                              long n, float grad_scale);

    // AdamW step over n parameters, exactly PyTorch's torch.optim.AdamW (single tensor):
    //   g = grad * grad_scale                        (grad_scale: clipping coefficient)
    //   w = w * (1 - lr * weight_decay)
    //   m = beta1 * m + (1 - beta1) * g
    //   v = beta2 * v + (1 - beta2) * g * g
    //   w = w - (lr / bias_correction1) * m / (sqrt(v) / sqrt(bias_correction2) + eps)
    // with bias_correction1 = 1 - beta1^t and bias_correction2 = 1 - beta2^t.
    void (*adamw_update)(float *w, float *m, float *v, const float *grad, long n, float lr,
                         float beta1, float beta2, float eps, float weight_decay,
                         float bias_correction1, float bias_correction2, float grad_scale);
    // ema = (1 - momentum) * ema + momentum * w
    void (*ema_update)(float *ema, const float *w, long n, float momentum);
    // sum_i x_i^2, accumulated in double
    double (*sum_squares)(const float *x, long n);
};

// The table in use: chosen on first call from the CPU (or CATLIP_ISA), then fixed.
const struct kernels *kernels_active(void);
// A specific table by name ("scalar", "avx2", "avx512"), or NULL when this CPU lacks it.
const struct kernels *kernels_by_name(const char *name);

extern const struct kernels kernels_scalar;
extern const struct kernels kernels_avx2;
extern const struct kernels kernels_avx512;
