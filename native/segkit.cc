// segkit's native kernels (Node-API, C ABI) for training on the wasm backend: the convolutions (forward, stride-1
// input gradient, filter gradient; register tiles), batch norm (memory-bound passes that tfjs-backend-wasm runs as
// many separate 128-bit SIMD ops), MaxPoolGrad, Relu's gradient and the row copies of Concat / SplitV, with AVX (GCC
// vector extensions, -march=native) over OpenMP threads. Every function works on typed arrays the caller allocated
// (views of the wasm heap, shared or not) and checks their lengths. Built by `scripts/build-native.mjs` (node-gyp, at
// install); loaded by src/backend/native.ts.
#include <node_api.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include <omp.h>

namespace {

struct F32 {
  float* data;
  size_t length;
};

bool fail(napi_env env, const char* message) {
  napi_throw_error(env, "ERR_SEGKIT_NATIVE", message);
  return false;
}

// The data and length of a typed array of `type`, else a thrown "expected a <what>".
bool getTyped(napi_env env, napi_value value, napi_typedarray_type type, const char* what, void** data,
              size_t* length) {
  napi_typedarray_type actual;
  napi_value buffer;
  size_t offset;
  bool isTyped = false;
  napi_is_typedarray(env, value, &isTyped);
  if (!isTyped || napi_get_typedarray_info(env, value, &actual, length, data, &buffer, &offset) != napi_ok ||
      actual != type) {
    return fail(env, what);
  }
  return true;
}

bool getF32(napi_env env, napi_value value, F32* out) {
  void* data;
  if (!getTyped(env, value, napi_float32_array, "segkit native: expected a Float32Array", &data, &out->length)) {
    return false;
  }
  out->data = static_cast<float*>(data);
  return true;
}

bool getArgs(napi_env env, napi_callback_info info, size_t count, napi_value* args) {
  size_t argc = count;
  if (napi_get_cb_info(env, info, &argc, args, nullptr, nullptr) != napi_ok || argc != count) {
    return fail(env, "segkit native: wrong number of arguments");
  }
  return true;
}

bool getNumber(napi_env env, napi_value value, double* out) {
  if (napi_get_value_double(env, value, out) != napi_ok) return fail(env, "segkit native: expected a number");
  return true;
}

// Per-channel sums over the M rows of x [M, C]: mode 0 sum(x); mode 1 sum((x - mean)^2); mode 2 sum(dy) into s1 and
// sum(dy * (x - mean)) into s2. Each thread sums blocks of 256 rows in float, then adds the blocks in double.
enum class SumMode { Plain, SquaredDeviation, Gradient };

void channelSums(const float* x, const float* dy, const float* mean, long rows, int channels, SumMode mode,
                 double* s1, double* s2) {
  const int threads = omp_get_max_threads();
  std::vector<double> part1(static_cast<size_t>(threads) * channels, 0.0);
  std::vector<double> part2(static_cast<size_t>(threads) * channels, 0.0);
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num();
    const int nt = omp_get_num_threads();
    const long lo = rows * t / nt;
    const long hi = rows * (t + 1) / nt;
    std::vector<float> block1(channels), block2(channels);
    float* a1 = block1.data();
    float* a2 = block2.data();
    double* p1 = &part1[static_cast<size_t>(t) * channels];
    double* p2 = &part2[static_cast<size_t>(t) * channels];
    for (long start = lo; start < hi; start += 256) {
      const long end = start + 256 < hi ? start + 256 : hi;
      for (int c = 0; c < channels; c++) a1[c] = a2[c] = 0.0f;
      for (long m = start; m < end; m++) {
        const float* xr = x + m * channels;
        if (mode == SumMode::Plain) {
          for (int c = 0; c < channels; c++) a1[c] += xr[c];
        } else if (mode == SumMode::SquaredDeviation) {
          for (int c = 0; c < channels; c++) {
            const float d = xr[c] - mean[c];
            a1[c] += d * d;
          }
        } else {
          const float* gr = dy + m * channels;
          for (int c = 0; c < channels; c++) {
            a1[c] += gr[c];
            a2[c] += gr[c] * (xr[c] - mean[c]);
          }
        }
      }
      for (int c = 0; c < channels; c++) {
        p1[c] += a1[c];
        p2[c] += a2[c];
      }
    }
  }
  for (int c = 0; c < channels; c++) {
    double t1 = 0.0, t2 = 0.0;
    for (int t = 0; t < threads; t++) {
      t1 += part1[static_cast<size_t>(t) * channels + c];
      t2 += part2[static_cast<size_t>(t) * channels + c];
    }
    s1[c] = t1;
    if (s2 != nullptr) s2[c] = t2;
  }
}

// out[m, c] = a[c] * u[m, c] + b[c] * (x[m, c] - mean[c]) + k[c], or without the u term when u is null.
// (x - mean) first: folding mean into k loses precision when |mean| is large against the spread.
void perChannelAffine(const float* u, const float* x, const float* mean, const float* a, const float* b,
                      const float* k, float* out, long rows, int channels) {
#pragma omp parallel for schedule(static)
  for (long m = 0; m < rows; m++) {
    const float* xr = x + m * channels;
    float* o = out + m * channels;
    if (u == nullptr) {
      for (int c = 0; c < channels; c++) o[c] = b[c] * (xr[c] - mean[c]) + k[c];
    } else {
      const float* ur = u + m * channels;
      for (int c = 0; c < channels; c++) o[c] = a[c] * ur[c] + b[c] * (xr[c] - mean[c]) + k[c];
    }
  }
}

bool sameLength(napi_env env, std::initializer_list<const F32*> arrays, size_t length, const char* what) {
  for (const F32* a : arrays) {
    if (a->length != length) return fail(env, what);
  }
  return true;
}

// batchNormForward(x [M*C], gamma [C], beta [C], epsilon, y [M*C], mean [C], variance [C]): training-mode batch
// norm over every axis but the last; mean and the biased variance (two passes, double sums) are written out.
napi_value BatchNormForward(napi_env env, napi_callback_info info) {
  napi_value args[7];
  F32 x, gamma, beta, y, mean, variance;
  double epsilon;
  if (!getArgs(env, info, 7, args) || !getF32(env, args[0], &x) || !getF32(env, args[1], &gamma) ||
      !getF32(env, args[2], &beta) || !getNumber(env, args[3], &epsilon) || !getF32(env, args[4], &y) ||
      !getF32(env, args[5], &mean) || !getF32(env, args[6], &variance)) {
    return nullptr;
  }
  const size_t channels = gamma.length;
  if (channels == 0 || x.length % channels != 0 || x.length == 0) {
    fail(env, "segkit native: x's length is not a positive multiple of the channel count");
    return nullptr;
  }
  const char* perChannel = "segkit native: a per-channel array has the wrong length";
  if (!sameLength(env, {&beta, &mean, &variance}, channels, perChannel) ||
      !sameLength(env, {&y}, x.length, "segkit native: y's length differs from x's")) {
    return nullptr;
  }
  const long rows = static_cast<long>(x.length / channels);
  const int c = static_cast<int>(channels);
  std::vector<double> sums(channels);
  channelSums(x.data, nullptr, nullptr, rows, c, SumMode::Plain, sums.data(), nullptr);
  for (size_t i = 0; i < channels; i++) mean.data[i] = static_cast<float>(sums[i] / rows);
  channelSums(x.data, nullptr, mean.data, rows, c, SumMode::SquaredDeviation, sums.data(), nullptr);
  std::vector<float> scale(channels);
  for (size_t i = 0; i < channels; i++) {
    variance.data[i] = static_cast<float>(sums[i] / rows);
    scale[i] = static_cast<float>(gamma.data[i] / std::sqrt(static_cast<double>(variance.data[i]) + epsilon));
  }
  perChannelAffine(nullptr, x.data, mean.data, nullptr, scale.data(), beta.data, y.data, rows, c);
  return nullptr;
}

// batchNormBackward(dy, x, mean, variance, gamma, epsilon, dx, dgamma, dbeta): with r = 1/sqrt(var + eps),
// a = gamma * r, M rows: dbeta = sum(dy), dgamma = r * sum(dy * (x - mean)),
// dx = a * dy + b * (x - mean) - a * sum(dy) / M with b = -a * r^2 * sum(dy * (x - mean)) / M.
napi_value BatchNormBackward(napi_env env, napi_callback_info info) {
  napi_value args[9];
  F32 dy, x, mean, variance, gamma, dx, dgamma, dbeta;
  double epsilon;
  if (!getArgs(env, info, 9, args) || !getF32(env, args[0], &dy) || !getF32(env, args[1], &x) ||
      !getF32(env, args[2], &mean) || !getF32(env, args[3], &variance) || !getF32(env, args[4], &gamma) ||
      !getNumber(env, args[5], &epsilon) || !getF32(env, args[6], &dx) || !getF32(env, args[7], &dgamma) ||
      !getF32(env, args[8], &dbeta)) {
    return nullptr;
  }
  const size_t channels = gamma.length;
  if (channels == 0 || x.length % channels != 0 || x.length == 0) {
    fail(env, "segkit native: x's length is not a positive multiple of the channel count");
    return nullptr;
  }
  if (!sameLength(env, {&mean, &variance, &dgamma, &dbeta}, channels,
                  "segkit native: a per-channel array has the wrong length") ||
      !sameLength(env, {&dy, &dx}, x.length, "segkit native: dy or dx's length differs from x's")) {
    return nullptr;
  }
  const long rows = static_cast<long>(x.length / channels);
  const int c = static_cast<int>(channels);
  std::vector<double> sumDy(channels), sumDyXc(channels);
  channelSums(x.data, dy.data, mean.data, rows, c, SumMode::Gradient, sumDy.data(), sumDyXc.data());
  std::vector<float> a(channels), b(channels), k(channels);
  for (size_t i = 0; i < channels; i++) {
    const double r = 1.0 / std::sqrt(static_cast<double>(variance.data[i]) + epsilon);
    const double ai = gamma.data[i] * r;
    const double bi = -ai * r * r * sumDyXc[i] / rows;
    dbeta.data[i] = static_cast<float>(sumDy[i]);
    dgamma.data[i] = static_cast<float>(r * sumDyXc[i]);
    a[i] = static_cast<float>(ai);
    b[i] = static_cast<float>(bi);
    k[i] = static_cast<float>(-ai * sumDy[i] / rows);
  }
  perChannelAffine(dy.data, x.data, mean.data, a.data(), b.data(), k.data(), dx.data, rows, c);
  return nullptr;
}

// ---- convolution filter gradient -------------------------------------------------------------------------------
// dW[i, j, ci, co] = sum over n, oy, ox of x[n, oy*sh + i - pt, ox*sw + j - pl, ci] * dy[n, oy, ox, co] (NHWC,
// filter HWIO, dilation 1, out-of-range input positions are the zero padding). Threads split the output rows
// (n, oy); each sums into its own dW, then the threads' dWs are added. Within a row, for each tap, a register tile
// of CI (8, 4 or 1) input channels x 32 (or 16) output channels runs over the row's pixels (GCC vector extensions:
// AVX-512 registers with -march=native on such a CPU, two AVX2 ones or four SSE ones elsewhere). Keeping dy's
// vectors in registers (instead of GCC's reload per multiply-add) took the U-Net's 15 filter gradients from 87 to
// 34 ms (250-320 GFLOP/s on the large layers, against ~390 for bare multiply-adds on these 2 cores).
typedef float v16 __attribute__((vector_size(64)));
typedef float v16u __attribute__((vector_size(64), aligned(4), may_alias));

// Keeps a vector in a register: GCC otherwise reloads it from memory for every multiply-add that uses it (12 loads
// per 8 FMAs in the filter gradient). One AVX-512 register holds a v16; elsewhere (two AVX2 registers, four SSE
// ones) the constraint cannot be met, so the hint is left out and the kernels are slower but the same.
#ifdef __AVX512F__
#define KEEP_IN_REGISTER(v) __asm__("" : "+v"(v))
#else
#define KEEP_IN_REGISTER(v) (void)0
#endif

struct ConvGeometry {
  long n, h, w, ci, ho, wo, co, kh, kw, sh, sw, pt, pl;
};

// acc[t][...] += sum over the pixels of x[p, t] * dy[p, co0 .. co0 + 16 * V)
template <int CI, int V>
inline void filterTile(const float* xp, long xStep, const float* gp, long gStep, long count, float* acc, long co) {
  v16 sum[CI][V] = {};
  for (long p = 0; p < count; p++, xp += xStep, gp += gStep) {
    v16 g[V];
    for (int v = 0; v < V; v++) {
      g[v] = *reinterpret_cast<const v16u*>(gp + 16 * v);
      KEEP_IN_REGISTER(g[v]);
    }
    for (int t = 0; t < CI; t++) {
      const float b = xp[t];
      for (int v = 0; v < V; v++) sum[t][v] += b * g[v];
    }
  }
  for (int t = 0; t < CI; t++) {
    for (int v = 0; v < V; v++) {
      v16u* a = reinterpret_cast<v16u*>(acc + t * co + 16 * v);
      *a += sum[t][v];
    }
  }
}

template <int CI>
void filterTiles(const float* xp, long xStep, const float* gp, long gStep, long count, float* acc, long co) {
  long c = 0;
  for (; c + 32 <= co; c += 32) filterTile<CI, 2>(xp, xStep, gp + c, gStep, count, acc + c, co);
  for (; c + 16 <= co; c += 16) filterTile<CI, 1>(xp, xStep, gp + c, gStep, count, acc + c, co);
  for (; c < co; c++) {  // output channels past the last whole vector
    float sum[CI] = {};
    const float* xq = xp;
    const float* gq = gp + c;
    for (long p = 0; p < count; p++, xq += xStep, gq += gStep) {
      for (int t = 0; t < CI; t++) sum[t] += xq[t] * *gq;
    }
    for (int t = 0; t < CI; t++) acc[t * co + c] += sum[t];
  }
}

void filterGradRow(const ConvGeometry& g, const float* x, const float* dy, long n, long oy, float* acc) {
  const float* gRow = dy + (n * g.ho + oy) * g.wo * g.co;
  for (long i = 0; i < g.kh; i++) {
    const long iy = oy * g.sh + i - g.pt;
    if (iy < 0 || iy >= g.h) continue;
    const float* xRow = x + (n * g.h + iy) * g.w * g.ci;
    for (long j = 0; j < g.kw; j++) {
      // the pixels ox whose input column ox * sw + j - pl lies inside the row
      long lo = 0;
      while (lo < g.wo && lo * g.sw + j - g.pl < 0) lo++;
      long hi = g.wo;
      while (hi > lo && (hi - 1) * g.sw + j - g.pl >= g.w) hi--;
      if (hi <= lo) continue;
      const float* xp = xRow + (lo * g.sw + j - g.pl) * g.ci;
      const float* gp = gRow + lo * g.co;
      float* tap = acc + (i * g.kw + j) * g.ci * g.co;
      long c = 0;
      for (; c + 8 <= g.ci; c += 8) filterTiles<8>(xp + c, g.sw * g.ci, gp, g.co, hi - lo, tap + c * g.co, g.co);
      for (; c + 4 <= g.ci; c += 4) filterTiles<4>(xp + c, g.sw * g.ci, gp, g.co, hi - lo, tap + c * g.co, g.co);
      for (; c < g.ci; c++) filterTiles<1>(xp + c, g.sw * g.ci, gp, g.co, hi - lo, tap + c * g.co, g.co);
    }
  }
}

bool getGeometry(napi_env env, napi_value value, ConvGeometry* g) {
  bool isArray = false;
  uint32_t length = 0;
  if (napi_is_array(env, value, &isArray) != napi_ok || !isArray ||
      napi_get_array_length(env, value, &length) != napi_ok || length != 13) {
    return fail(env, "segkit native: the convolution geometry is an array of 13 numbers");
  }
  long* fields[] = {&g->n,  &g->h,  &g->w,  &g->ci, &g->ho, &g->wo, &g->co,
                    &g->kh, &g->kw, &g->sh, &g->sw, &g->pt, &g->pl};
  for (uint32_t i = 0; i < length; i++) {
    napi_value element;
    double v;
    if (napi_get_element(env, value, i, &element) != napi_ok || !getNumber(env, element, &v)) return false;
    if (!(v >= 0 && v <= 1e9) || v != std::floor(v)) return fail(env, "segkit native: bad convolution geometry");
    *fields[i] = static_cast<long>(v);
  }
  if (g->n < 1 || g->h < 1 || g->w < 1 || g->ci < 1 || g->ho < 1 || g->wo < 1 || g->co < 1 || g->kh < 1 ||
      g->kw < 1 || g->sh < 1 || g->sw < 1) {
    return fail(env, "segkit native: bad convolution geometry");
  }
  // the sizes the kernels compute in long stay far from overflow (each is then checked against an array's length)
  const double limit = 9007199254740992.0;  // 2^53
  const double in = static_cast<double>(g->n) * g->h * g->w * g->ci;
  const double out = static_cast<double>(g->n) * g->ho * g->wo * g->co;
  if (in > limit || out > limit || static_cast<double>(g->kh) * g->kw * g->ci * g->co > limit) {
    return fail(env, "segkit native: convolution geometry too large");
  }
  return true;
}

// The arguments (a, b, c, geometry) of the convolution-shaped kernels below: three Float32Arrays and a geometry.
bool getThreeAndGeometry(napi_env env, napi_callback_info info, F32* a, F32* b, F32* c, ConvGeometry* g) {
  napi_value args[4];
  return getArgs(env, info, 4, args) && getF32(env, args[0], a) && getF32(env, args[1], b) &&
         getF32(env, args[2], c) && getGeometry(env, args[3], g);
}

// conv2dBackpropFilter(x, dy, dW, geometry): geometry is
// [N, H, W, Ci, Ho, Wo, Co, kh, kw, strideH, strideW, padTop, padLeft].
napi_value Conv2DBackpropFilter(napi_env env, napi_callback_info info) {
  F32 x, dy, dw;
  ConvGeometry g;
  if (!getThreeAndGeometry(env, info, &x, &dy, &dw, &g)) return nullptr;
  if (x.length != static_cast<size_t>(g.n * g.h * g.w * g.ci) ||
      dy.length != static_cast<size_t>(g.n * g.ho * g.wo * g.co) ||
      dw.length != static_cast<size_t>(g.kh * g.kw * g.ci * g.co)) {
    fail(env, "segkit native: x, dy or dW does not match the convolution geometry");
    return nullptr;
  }
  const long rows = g.n * g.ho;
  const int threads = static_cast<int>(std::min<long>(omp_get_max_threads(), rows));
  std::vector<float> partial(static_cast<size_t>(threads) * dw.length, 0.0f);
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num();
    const int nt = omp_get_num_threads();
    float* acc = partial.data() + static_cast<size_t>(t) * dw.length;
    for (long r = rows * t / nt; r < rows * (t + 1) / nt; r++) {
      filterGradRow(g, x.data, dy.data, r / g.ho, r % g.ho, acc);
    }
  }
  for (size_t k = 0; k < dw.length; k++) {
    float sum = 0.0f;
    for (int t = 0; t < threads; t++) sum += partial[static_cast<size_t>(t) * dw.length + k];
    dw.data[k] = sum;
  }
  return nullptr;
}

// ---- max pooling gradient ----------------------------------------------------------------------------------------
// dx[n, y, x, c] = the sum of dy over the windows whose first maximum in row-major order (strictly greater, so NaN
// and padding are never chosen) is at (y, x). Geometry as for convolutions, with Co = Ci = C and the window as the
// filter. Threads split the batch (windows never cross images).
napi_value MaxPoolGrad(napi_env env, napi_callback_info info) {
  F32 x, dy, dx;
  ConvGeometry g;
  if (!getThreeAndGeometry(env, info, &x, &dy, &dx, &g)) return nullptr;
  const size_t inSize = static_cast<size_t>(g.n * g.h * g.w * g.ci);
  if (g.co != g.ci || x.length != inSize || dx.length != inSize ||
      dy.length != static_cast<size_t>(g.n * g.ho * g.wo * g.co)) {
    fail(env, "segkit native: x, dy or dx does not match the pooling geometry");
    return nullptr;
  }
  const long c = g.ci;
#pragma omp parallel
  {
    std::vector<float> best(static_cast<size_t>(c));
    std::vector<long> at(static_cast<size_t>(c));
#pragma omp for schedule(static)
    for (long n = 0; n < g.n; n++) {
      float* dxImage = dx.data + n * g.h * g.w * c;
      std::fill(dxImage, dxImage + g.h * g.w * c, 0.0f);
      for (long oy = 0; oy < g.ho; oy++) {
        for (long ox = 0; ox < g.wo; ox++) {
          std::fill(best.begin(), best.end(), -INFINITY);
          std::fill(at.begin(), at.end(), -1L);
          for (long i = 0; i < g.kh; i++) {
            const long iy = oy * g.sh + i - g.pt;
            if (iy < 0 || iy >= g.h) continue;
            for (long j = 0; j < g.kw; j++) {
              const long ix = ox * g.sw + j - g.pl;
              if (ix < 0 || ix >= g.w) continue;
              const long base = (iy * g.w + ix) * c;
              const float* xr = x.data + n * g.h * g.w * c + base;
              for (long k = 0; k < c; k++) {
                const bool greater = xr[k] > best[k];
                best[k] = greater ? xr[k] : best[k];
                at[k] = greater ? base + k : at[k];
              }
            }
          }
          const float* gr = dy.data + ((n * g.ho + oy) * g.wo + ox) * c;
          for (long k = 0; k < c; k++) {
            if (at[k] >= 0) dxImage[at[k]] += gr[k];
          }
        }
      }
    }
  }
  return nullptr;
}

// reluGrad(dy, x, dx): dx = dy * step(x), step(x) = 1 for x > 0, NaN for NaN, else 0 (tfjs's Relu gradient, NaN and
// infinities included).
napi_value ReluGrad(napi_env env, napi_callback_info info) {
  napi_value args[3];
  F32 dy, x, dx;
  if (!getArgs(env, info, 3, args) || !getF32(env, args[0], &dy) || !getF32(env, args[1], &x) ||
      !getF32(env, args[2], &dx)) {
    return nullptr;
  }
  if (!sameLength(env, {&dy, &dx}, x.length, "segkit native: dy or dx's length differs from x's")) return nullptr;
  const long n = static_cast<long>(x.length);
  const float* g = dy.data;
  const float* xv = x.data;
  float* o = dx.data;
#pragma omp parallel for schedule(static)
  for (long i = 0; i < n; i++) o[i] = g[i] * (xv[i] > 0.0f ? 1.0f : (xv[i] != xv[i] ? NAN : 0.0f));
  return nullptr;
}

// copyRows(heap, from, fromStride, to, toStride, count, width): copies `count` rows of `width` bytes inside `heap` (a
// Uint8Array over the wasm heap), row r from byte from + r * fromStride to to + r * toStride. The rows of the source
// and the destination must not overlap (they belong to different tensors).
napi_value CopyRows(napi_env env, napi_callback_info info) {
  napi_value args[7];
  if (!getArgs(env, info, 7, args)) return nullptr;
  size_t length;
  void* data;
  if (!getTyped(env, args[0], napi_uint8_array, "segkit native: copyRows takes a Uint8Array", &data, &length)) {
    return nullptr;
  }
  double v[6];
  for (int i = 0; i < 6; i++) {
    if (!getNumber(env, args[i + 1], &v[i])) return nullptr;
    if (!(v[i] >= 0 && v[i] <= 9007199254740991.0) || v[i] != std::floor(v[i])) {
      fail(env, "segkit native: copyRows takes non-negative integers");
      return nullptr;
    }
  }
  const size_t from = v[0], fromStride = v[1], to = v[2], toStride = v[3], count = v[4], width = v[5];
  if (count == 0 || width == 0) return nullptr;
  const auto fits = [&](size_t start, size_t stride) {
    const double last = static_cast<double>(start) + static_cast<double>(count - 1) * stride + width;
    return last <= static_cast<double>(length);
  };
  if (!fits(from, fromStride) || !fits(to, toStride)) {
    fail(env, "segkit native: copyRows reaches past the end of the heap");
    return nullptr;
  }
  uint8_t* heap = static_cast<uint8_t*>(data);
#pragma omp parallel for schedule(static)
  for (long r = 0; r < static_cast<long>(count); r++) {
    std::memcpy(heap + to + r * toStride, heap + from + r * fromStride, width);
  }
  return nullptr;
}

// ---- convolution ------------------------------------------------------------------------------------------------
// y[n, oy, ox, co] = act(bias[co] + sum over i, j, ci of x[n, oy*sh + i - pt, ox*sw + j - pl, ci] * w[i, j, ci, co])
// (NHWC, filter HWIO, dilation 1; positions outside x read zeros). The output pixels of the whole batch, in order,
// go in blocks of P to the threads; for each block, a register tile of P pixels x 16 * V output channels sums over
// the taps and input channels, the filter's vectors held in registers and each pixel's input broadcast.
template <int P, int V>
void convTile(const float* const* xp, long taps, long ci, const float* w, long co, const float* bias, bool relu,
              float* const* yp) {
  v16 sum[P][V];
  for (int v = 0; v < V; v++) {
    v16 b = {};
    if (bias != nullptr) b = *reinterpret_cast<const v16u*>(bias + 16 * v);
    for (int p = 0; p < P; p++) sum[p][v] = b;
  }
  for (long t = 0; t < taps; t++) {
    const float* wt = w + t * ci * co;
    const float* const* xt = xp + t * P;
    for (long c = 0; c < ci; c++) {
      v16 wv[V];
      for (int v = 0; v < V; v++) {
        wv[v] = *reinterpret_cast<const v16u*>(wt + c * co + 16 * v);
        KEEP_IN_REGISTER(wv[v]);
      }
      for (int p = 0; p < P; p++) {
        const float b = xt[p][c];
        for (int v = 0; v < V; v++) sum[p][v] += b * wv[v];
      }
    }
  }
  for (int p = 0; p < P; p++) {
    for (int v = 0; v < V; v++) {
      v16 r = sum[p][v];
      if (relu) r = r < 0 ? 0 : r;  // NaN stays NaN, as tfjs's relu and the scalar tail below
      *reinterpret_cast<v16u*>(yp[p] + 16 * v) = r;
    }
  }
}

// One block of P output pixels (their input pointers in xp, P per tap) over every output channel.
template <int P>
void convBlock(const float* const* xp, long taps, long ci, const float* w, long co, const float* bias, bool relu,
               float* const* yp) {
  long c = 0;
  float* y[P];
  const auto at = [&](long offset) {
    for (int p = 0; p < P; p++) y[p] = yp[p] + offset;
    return y;
  };
  const auto b = [&](long offset) { return bias == nullptr ? nullptr : bias + offset; };
  for (; c + 64 <= co && P <= 6; c += 64) convTile<P, 4>(xp, taps, ci, w + c, co, b(c), relu, at(c));
  for (; c + 32 <= co; c += 32) convTile<P, 2>(xp, taps, ci, w + c, co, b(c), relu, at(c));
  for (; c + 16 <= co; c += 16) convTile<P, 1>(xp, taps, ci, w + c, co, b(c), relu, at(c));
  for (; c < co; c++) {  // output channels past the last whole vector
    for (int p = 0; p < P; p++) {
      float sum = bias == nullptr ? 0.0f : bias[c];
      for (long t = 0; t < taps; t++) {
        const float* xv = xp[t * P + p];
        const float* wt = w + t * ci * co + c;
        for (long k = 0; k < ci; k++) sum += xv[k] * wt[k * co];
      }
      yp[p][c] = relu && sum < 0 ? 0.0f : sum;
    }
  }
}

// Output pixels [first, first + P): their input pointers per tap (zeros outside x) and output rows, then the block.
template <int P>
void convPixels(const ConvGeometry& g, const float* x, const float* zeros, const float* w, const float* bias,
                bool relu, float* y, long first, const float** xp) {
  float* yp[P];
  long n = first / (g.ho * g.wo), oy = first / g.wo % g.ho, ox = first % g.wo;
  for (int p = 0; p < P; p++) {
    yp[p] = y + (first + p) * g.co;
    for (long i = 0; i < g.kh; i++) {
      const long iy = oy * g.sh + i - g.pt;
      const bool rowInside = iy >= 0 && iy < g.h;
      const float* row = x + (n * g.h + iy) * g.w * g.ci;
      for (long j = 0; j < g.kw; j++) {
        const long ix = ox * g.sw + j - g.pl;
        xp[(i * g.kw + j) * P + p] = rowInside && ix >= 0 && ix < g.w ? row + ix * g.ci : zeros;
      }
    }
    if (++ox == g.wo) {  // the next output pixel, across rows and images
      ox = 0;
      if (++oy == g.ho) {
        oy = 0;
        n++;
      }
    }
  }
  convBlock<P>(xp, g.kh * g.kw, g.ci, w, g.co, bias, relu, yp);
}

// The pixel block by output channel count: wide tiles (6 pixels x 64 channels) when they fill, else 8 pixels (8
// measured faster than 12 for 16 and 32 channels: 12 pixel pointers crowd the general registers).
void convolve(const ConvGeometry& g, const float* x, const float* w, const float* bias, bool relu, float* y) {
  const std::vector<float> zeros(static_cast<size_t>(g.ci), 0.0f);
  const long pixels = g.n * g.ho * g.wo;
  const int block = g.co % 64 == 0 ? 6 : 8;
  const long blocks = (pixels + block - 1) / block;
#pragma omp parallel
  {
    std::vector<const float*> xp(static_cast<size_t>(g.kh * g.kw) * 8);
#pragma omp for schedule(static)
    for (long b = 0; b < blocks; b++) {
      const long first = b * block;
      if (first + block <= pixels) {
        if (block == 6) convPixels<6>(g, x, zeros.data(), w, bias, relu, y, first, xp.data());
        else convPixels<8>(g, x, zeros.data(), w, bias, relu, y, first, xp.data());
      } else {
        for (long q = first; q < pixels; q++) convPixels<1>(g, x, zeros.data(), w, bias, relu, y, q, xp.data());
      }
    }
  }
}

bool convSizesMatch(napi_env env, const ConvGeometry& g, const F32& x, const F32& w, const F32& y) {
  if (x.length != static_cast<size_t>(g.n * g.h * g.w * g.ci) ||
      w.length != static_cast<size_t>(g.kh * g.kw * g.ci * g.co) ||
      y.length != static_cast<size_t>(g.n * g.ho * g.wo * g.co)) {
    return fail(env, "segkit native: x, the filter or y does not match the convolution geometry");
  }
  return true;
}

// conv2d(x, w, bias or null, y, geometry, relu): geometry as for conv2dBackpropFilter.
napi_value Conv2D(napi_env env, napi_callback_info info) {
  napi_value args[6];
  F32 x, w, bias = {nullptr, 0}, y;
  ConvGeometry g;
  napi_valuetype biasType;
  bool relu = false;
  if (!getArgs(env, info, 6, args) || !getF32(env, args[0], &x) || !getF32(env, args[1], &w) ||
      napi_typeof(env, args[2], &biasType) != napi_ok || (biasType != napi_null && !getF32(env, args[2], &bias)) ||
      !getF32(env, args[3], &y) || !getGeometry(env, args[4], &g) || !convSizesMatch(env, g, x, w, y)) {
    return nullptr;
  }
  if (bias.data != nullptr && bias.length != static_cast<size_t>(g.co)) {
    fail(env, "segkit native: the bias's length is not the output channel count");
    return nullptr;
  }
  if (napi_get_value_bool(env, args[5], &relu) != napi_ok) {
    fail(env, "segkit native: relu must be a boolean");
    return nullptr;
  }
  convolve(g, x.data, w.data, bias.data, relu, y.data);
  return nullptr;
}

// conv2dBackpropInput(dy, w, dx, geometry): the input gradient of a stride-1 convolution of `geometry` (that of the
// forward convolution: x is dx's shape, Ho x Wo dy's), as the forward convolution of dy with the filter turned
// 180 degrees and its channels swapped, w'[kh-1-i, kw-1-j, co, ci] = w[i, j, ci, co], padded kh-1-pt, kw-1-pl.
napi_value Conv2DBackpropInput(napi_env env, napi_callback_info info) {
  F32 dy, w, dx;
  ConvGeometry g;
  if (!getThreeAndGeometry(env, info, &dy, &w, &dx, &g) || !convSizesMatch(env, g, dx, w, dy)) return nullptr;
  if (g.sh != 1 || g.sw != 1 || g.pt >= g.kh || g.pl >= g.kw) {
    fail(env, "segkit native: conv2dBackpropInput takes stride 1 and pads smaller than the filter");
    return nullptr;
  }
  std::vector<float> turned(w.length);
  for (long i = 0; i < g.kh; i++) {
    for (long j = 0; j < g.kw; j++) {
      const float* from = w.data + (i * g.kw + j) * g.ci * g.co;
      float* to = turned.data() + ((g.kh - 1 - i) * g.kw + (g.kw - 1 - j)) * g.co * g.ci;
      for (long c = 0; c < g.ci; c++) {
        for (long o = 0; o < g.co; o++) to[o * g.ci + c] = from[c * g.co + o];
      }
    }
  }
  const ConvGeometry t = {g.n, g.ho, g.wo, g.co, g.h, g.w, g.ci, g.kh, g.kw, 1, 1, g.kh - 1 - g.pt, g.kw - 1 - g.pl};
  convolve(t, dy.data, turned.data(), nullptr, false, dx.data);
  return nullptr;
}

// upscaleThreshold(lowRes, txIdx, txW, tyIdx, tyW, levels, masks, counts, threads): SAM's mask upscaling for a click
// (src/sam/postprocess.ts `upscaleAndThreshold`, the same float32 values): each plane of lowRes [P, 256, 256] through
// the composed taps (3 per output; indices Int32Array, weights Float64Array, [W * 3] and [H * 3]), horizontal then
// vertical, in doubles, rounded once to float; masks (P Uint8Arrays [H * W], zero-filled by the caller) = value >
// levels[0], counts [2P] = per plane the values > levels[2] (and > levels[1]), then those > levels[1]; `threads` 0
// for OpenMP's default. No fused multiply-adds (JavaScript has none). As postprocess.ts, only outputs in doubt are
// computed: an output whose taps all lie above (below) every level, with room for rounding, lies above (below) them
// too (the weights are >= 0 and sum to 1).
enum : uint8_t { kDoubt = 0, kAbove = 1, kBelow = 2 };

__attribute__((optimize("fp-contract=off"))) void upscalePlanes(const float* low, long planes, const int* tx,
                                                               const double* wx, long width, const int* ty,
                                                               const double* wy, long height, const double* levels,
                                                               uint8_t* const* masks, double* counts, int threads) {
  const long L = 256;
  const double threshold = levels[0], lo = levels[1], hi = levels[2];
  const double top = std::max({threshold, lo, hi}), bottom = std::min({threshold, lo, hi});
  // scratch kept between calls (a click's size repeats; fresh pages are slow to fault in on some VMs)
  thread_local std::vector<double> tmp;
  thread_local std::vector<uint8_t> state, rowState;
  tmp.resize(static_cast<size_t>(planes) * L * width);
  state.resize(static_cast<size_t>(planes) * L * L);
  rowState.resize(static_cast<size_t>(planes) * L);
  std::fill(counts, counts + 2 * planes, 0.0);
  // per low-res column j: the first output whose taps all are >= j, the last whose taps all are <= j (taps grow
  // with the output, as a resize's do)
  std::vector<long> xFirst(L, width), xLast(L, -1);
  for (long x = 0, j = 0; x < width; x++) {
    for (const long first = std::min({tx[x * 3], tx[x * 3 + 1], tx[x * 3 + 2]}); j <= first; j++) xFirst[j] = x;
  }
  for (long x = width - 1, j = L - 1; x >= 0; x--) {
    for (const long last = std::max({tx[x * 3], tx[x * 3 + 1], tx[x * 3 + 2]}); j >= last; j--) xLast[j] = x;
  }
  // the low-res rows the output rows read (SAM's padded frame leaves the rest out)
  const long r0 = *std::min_element(ty, ty + height * 3), r1 = *std::max_element(ty, ty + height * 3);
  double* t = tmp.data();
  uint8_t* st = state.data();
  uint8_t* rs = rowState.data();
  // one parallel region (a wake-up of the sleeping threads each) for every plane: the low-res rows' horizontal pass
  // and states, then the output rows
#pragma omp parallel num_threads(threads > 0 ? threads : omp_get_max_threads())
  {
    // the runs of outputs along a row whose taps are all above, all below, or in doubt, for the last window of
    // low-res rows (consecutive output rows mostly share one)
    std::vector<uint8_t> colState(L);
    struct Run {
      long x0, x1;
      uint8_t s;
    };
    std::vector<Run> runs;
    long window = -1;
    std::vector<long> above(planes, 0), inside(planes, 0);
#pragma omp for schedule(static)
    for (long pr = 0; pr < planes * L; pr++) {
      if (pr % L < r0 || pr % L > r1) continue;
      const float* row = low + pr * L;
      uint8_t all = kAbove | kBelow;
      for (long j = 0; j < L; j++) {
        const double v = row[j];
        const double margin = 1e-3 + 1e-5 * std::fabs(v);  // NaN and infinities are in doubt
        st[pr * L + j] = v > top + margin ? kAbove : v < bottom - margin ? kBelow : kDoubt;
        all &= st[pr * L + j];
      }
      rs[pr] = all;
      double* out = t + pr * width;
      for (long i = 0; i < width; i++) {
        const long k = i * 3;
        out[i] = static_cast<double>(row[tx[k]]) * wx[k] + static_cast<double>(row[tx[k + 1]]) * wx[k + 1] +
                 static_cast<double>(row[tx[k + 2]]) * wx[k + 2];
      }
    }
#pragma omp for schedule(static)
    for (long py = 0; py < planes * height; py++) {
      const long c = py / height, y = py % height;
      const long ra = c * L + ty[y * 3], rb = c * L + ty[y * 3 + 1], rd = c * L + ty[y * 3 + 2];
      const double* a = t + ra * width;
      const double* b = t + rb * width;
      const double* d = t + rd * width;
      const double wa = wy[y * 3], wb = wy[y * 3 + 1], wd = wy[y * 3 + 2];
      uint8_t* m = masks[c] + y * width;
      const uint8_t rows = rs[ra] & rs[rb] & rs[rd];
      if (rows == kBelow) continue;
      if (rows == kAbove) {
        std::memset(m, 1, width);
        above[c] += width;
        inside[c] += width;
        continue;
      }
      if (const long key = (ra * L + rb) * L + rd; key != window) {
        // runs of low-res columns of one certain state cover the outputs whose taps all fall inside them
        window = key;
        for (long j = 0; j < L; j++) colState[j] = st[ra * L + j] & st[rb * L + j] & st[rd * L + j];
        runs.clear();
        long x = 0;
        for (long j = 0; j < L;) {
          const uint8_t s = colState[j];
          long e = j;
          while (e + 1 < L && colState[e + 1] == s) e++;
          const long xa = std::max(x, xFirst[j]), xb = xLast[e];
          if (s != kDoubt && xa <= xb) {
            if (x < xa) runs.push_back({x, xa, kDoubt});
            if (s == kAbove) runs.push_back({xa, xb + 1, kAbove});
            x = xb + 1;
          }
          j = e + 1;
        }
        if (x < width) runs.push_back({x, width, kDoubt});
      }
      long n = 0, k = 0;
      for (const Run& run : runs) {
        const long x0 = run.x0, x1 = run.x1;  // (locals: the mask's stores could alias the run's fields)
        if (run.s == kAbove) {
          std::memset(m + x0, 1, x1 - x0);
          n += x1 - x0;
          k += x1 - x0;
        } else if (wd == 0.0) {  // as postprocess.ts: two terms (a third 0 * inf would make NaN)
          for (long x = x0; x < x1; x++) {
            const double v = static_cast<float>(a[x] * wa + b[x] * wb);
            k += v > lo;
            n += (v > lo) & (v > hi);
            m[x] = v > threshold;
          }
        } else {
          for (long x = x0; x < x1; x++) {
            const double v = static_cast<float>(a[x] * wa + b[x] * wb + d[x] * wd);
            k += v > lo;
            n += (v > lo) & (v > hi);
            m[x] = v > threshold;
          }
        }
      }
      above[c] += n;
      inside[c] += k;
    }
    for (long c = 0; c < planes; c++) {
#pragma omp atomic
      counts[c] += static_cast<double>(above[c]);
#pragma omp atomic
      counts[planes + c] += static_cast<double>(inside[c]);
    }
  }
}

napi_value UpscaleThreshold(napi_env env, napi_callback_info info) {
  napi_value args[9];
  F32 low;
  void *tx, *wx, *ty, *wy, *levels, *counts;
  size_t ntx, nwx, nty, nwy, nlevels, ncounts;
  const char* ints = "segkit native: expected an Int32Array";
  const char* doubles = "segkit native: expected a Float64Array";
  double threads;
  if (!getArgs(env, info, 9, args) || !getF32(env, args[0], &low) ||
      !getTyped(env, args[1], napi_int32_array, ints, &tx, &ntx) ||
      !getTyped(env, args[2], napi_float64_array, doubles, &wx, &nwx) ||
      !getTyped(env, args[3], napi_int32_array, ints, &ty, &nty) ||
      !getTyped(env, args[4], napi_float64_array, doubles, &wy, &nwy) ||
      !getTyped(env, args[5], napi_float64_array, doubles, &levels, &nlevels) ||
      !getTyped(env, args[7], napi_float64_array, doubles, &counts, &ncounts) || !getNumber(env, args[8], &threads)) {
    return nullptr;
  }
  if (!(threads >= 0 && threads <= 256)) {
    fail(env, "segkit native: threads must be between 0 and 256");
    return nullptr;
  }
  const size_t plane = 256 * 256, planes = low.length / plane, width = ntx / 3, height = nty / 3;
  const char* sizes = "segkit native: upscaleThreshold's arrays do not match in size";
  if (planes == 0 || low.length % plane != 0 || width == 0 || height == 0 || ntx % 3 != 0 || nty % 3 != 0 ||
      nwx != ntx || nwy != nty || nlevels != 3 || ncounts != 2 * planes) {
    fail(env, sizes);
    return nullptr;
  }
  // masks: one Uint8Array [H * W] per plane
  bool isArray = false;
  uint32_t count = 0;
  if (napi_is_array(env, args[6], &isArray) != napi_ok || !isArray ||
      napi_get_array_length(env, args[6], &count) != napi_ok || count != planes) {
    fail(env, sizes);
    return nullptr;
  }
  std::vector<uint8_t*> masks(planes);
  for (uint32_t c = 0; c < count; c++) {
    napi_value element;
    size_t n;
    void* data;
    if (napi_get_element(env, args[6], c, &element) != napi_ok ||
        !getTyped(env, element, napi_uint8_array, "segkit native: expected Uint8Arrays", &data, &n)) {
      return nullptr;
    }
    if (static_cast<double>(n) != static_cast<double>(width) * height) {
      fail(env, sizes);
      return nullptr;
    }
    masks[c] = static_cast<uint8_t*>(data);
  }
  const std::pair<const int*, size_t> taps[] = {{static_cast<const int*>(tx), ntx}, {static_cast<const int*>(ty), nty}};
  for (const auto& [idx, n] : taps) {
    for (size_t k = 0; k < n; k++) {
      if (idx[k] < 0 || idx[k] >= 256) {
        fail(env, "segkit native: upscaleThreshold's tap indices must be in [0, 256)");
        return nullptr;
      }
    }
  }
  upscalePlanes(low.data, static_cast<long>(planes), static_cast<const int*>(tx), static_cast<const double*>(wx),
                static_cast<long>(width), static_cast<const int*>(ty), static_cast<const double*>(wy),
                static_cast<long>(height), static_cast<const double*>(levels), masks.data(),
                static_cast<double*>(counts), static_cast<int>(threads));
  return nullptr;
}

// setThreads(n): the OpenMP threads the kernels use.
napi_value SetThreads(napi_env env, napi_callback_info info) {
  napi_value args[1];
  double n;
  if (!getArgs(env, info, 1, args) || !getNumber(env, args[0], &n)) return nullptr;
  if (!(n >= 1 && n <= 256)) {
    fail(env, "segkit native: threads must be between 1 and 256");
    return nullptr;
  }
  omp_set_num_threads(static_cast<int>(n));
  return nullptr;
}

bool exportFunction(napi_env env, napi_value exports, const char* name, napi_callback callback) {
  napi_value fn;
  return napi_create_function(env, name, NAPI_AUTO_LENGTH, callback, nullptr, &fn) == napi_ok &&
         napi_set_named_property(env, exports, name, fn) == napi_ok;
}

}  // namespace

NAPI_MODULE_INIT() {
  // built with -march=native: refuse (an error segkit reports, then the wasm kernels) on a CPU without what the
  // build machine had, instead of dying on an illegal instruction
#ifdef __AVX512F__
  if (!__builtin_cpu_supports("avx512f")) {
    napi_throw_error(env, "ERR_SEGKIT_NATIVE", "segkit native: built for AVX-512, this CPU lacks it (npm rebuild)");
    return nullptr;
  }
#endif
#ifdef __AVX2__
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) {
    napi_throw_error(env, "ERR_SEGKIT_NATIVE", "segkit native: built for AVX2, this CPU lacks it (npm rebuild)");
    return nullptr;
  }
#endif
  if (!exportFunction(env, exports, "batchNormForward", BatchNormForward) ||
      !exportFunction(env, exports, "batchNormBackward", BatchNormBackward) ||
      !exportFunction(env, exports, "conv2dBackpropFilter", Conv2DBackpropFilter) ||
      !exportFunction(env, exports, "maxPoolGrad", MaxPoolGrad) ||
      !exportFunction(env, exports, "reluGrad", ReluGrad) ||
      !exportFunction(env, exports, "copyRows", CopyRows) ||
      !exportFunction(env, exports, "conv2d", Conv2D) ||
      !exportFunction(env, exports, "conv2dBackpropInput", Conv2DBackpropInput) ||
      !exportFunction(env, exports, "upscaleThreshold", UpscaleThreshold) ||
      !exportFunction(env, exports, "setThreads", SetThreads)) {
    return nullptr;
  }
  return exports;
}
