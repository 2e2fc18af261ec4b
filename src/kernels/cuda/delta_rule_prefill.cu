// Chunked delta-rule prefill: see delta_rule_prefill.h for the algorithm and the two launches.
#include "kernels/cuda/delta_rule_prefill.h"

#include <algorithm>
#include <vector>

#include "kernels/cuda/cuda_check.h"

namespace linfer::kernels::cuda {

namespace {

constexpr int C = 64;         // chunk length
constexpr int kThreads = 256;
constexpr int BV = 32;        // value columns per state-pass block (one warp's lanes)
constexpr int kMaxK = 128, kMaxV = 256;

struct Params {
  int64_t H, HV, K, V, group;
  float scale;
  bool l2norm;
  const float *q, *k, *v, *beta, *g;
  int64_t qs, ks, vs;
  const int64_t* offsets;     // [n + 1]
  const int64_t* seq_chunk0;  // [n + 1] first chunk of each sequence
  const int64_t* chunk_seq;   // [n_chunks]
  float* scratch;
  int64_t per;  // scratch floats per (chunk, value head)
  float* o;
  SlotPool state;
  const int32_t* slots;
};

// Scratch of one (chunk, value head): W [C, K] | Q ⊙ e^G [C, K] | (K ⊙ e^{G_last-G})ᵀ [K, C] | A_qk [C, C] |
// U [C, V] | G_last (padded to 4 floats, keeping every part 16-byte aligned).
__host__ __device__ inline int64_t scratch_floats(int64_t K, int64_t V) { return 3 * C * K + C * C + C * V + 4; }

__device__ inline float warp_sum(float x) {
  for (int d = 16; d > 0; d >>= 1) x += __shfl_xor_sync(0xffffffffu, x, d);
  return x;
}

__global__ void __launch_bounds__(kThreads) chunk_prepare(Params p) {
  extern __shared__ float sm[];
  const int K = int(p.K), V = int(p.V), KP = K + 1, NC = K + V;  // KP: odd row stride, no bank conflicts
  float* ks = sm;             // [C][KP] k, normalised
  float* qs = ks + C * KP;    // [C][KP] q, normalised and scaled
  float* akk = qs + C * KP;   // [C][C]
  float* gc = akk + C * C;    // [C] G
  float* bs = gc + C;         // [C] beta
  float* wu = bs + C;         // [C][NC] the solved columns [W | U]
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int64_t chunk = blockIdx.x, hv = blockIdx.y, h = hv / p.group;
  const int64_t seq = p.chunk_seq[chunk];
  const int64_t tok0 = p.offsets[seq] + C * (chunk - p.seq_chunk0[seq]);
  const int64_t left = p.offsets[seq + 1] - tok0;
  const int L = left < C ? int(left) : C;

  for (int idx = tid; idx < C * K; idx += kThreads) {
    const int r = idx / K, i = idx % K;
    const int64_t t = tok0 + r;
    ks[r * KP + i] = r < L ? p.k[t * p.ks + h * K + i] : 0.f;
    qs[r * KP + i] = r < L ? p.q[t * p.qs + h * K + i] : 0.f;
  }
  if (tid < C) {
    const int64_t t = tok0 + tid;
    bs[tid] = tid < L ? p.beta[t * p.HV + hv] : 0.f;
    gc[tid] = tid < L && p.g ? p.g[t * p.HV + hv] : 0.f;  // padded rows: g = 0, so G stays G_{L-1}
  }
  __syncthreads();
  for (int r = warp; r < L; r += kThreads / 32) {
    float sk = 0.f, sq = 0.f;
    for (int i = lane; i < K; i += 32) {
      sk += ks[r * KP + i] * ks[r * KP + i];
      sq += qs[r * KP + i] * qs[r * KP + i];
    }
    sk = warp_sum(sk);
    sq = warp_sum(sq);
    const float fk = p.l2norm ? 1.f / sqrtf(sk + 1e-6f) : 1.f;
    const float fq = (p.l2norm ? 1.f / sqrtf(sq + 1e-6f) : 1.f) * p.scale;
    for (int i = lane; i < K; i += 32) {
      ks[r * KP + i] *= fk;
      qs[r * KP + i] *= fq;
    }
  }
  if (tid == 0)
    for (int r = 1; r < C; ++r) gc[r] += gc[r - 1];
  __syncthreads();

  // A_kk and A_qk: thread (ti, tj) owns rows ti + 16a and columns tj + 16b
  const int ti = tid / 16, tj = tid % 16;
  float ak[4][4] = {}, aq[4][4] = {};
  for (int x = 0; x < K; ++x) {
    float ki[4], qi[4], kj[4];
#pragma unroll
    for (int a = 0; a < 4; ++a) {
      ki[a] = ks[(ti + 16 * a) * KP + x];
      qi[a] = qs[(ti + 16 * a) * KP + x];
      kj[a] = ks[(tj + 16 * a) * KP + x];
    }
#pragma unroll
    for (int a = 0; a < 4; ++a)
#pragma unroll
      for (int b = 0; b < 4; ++b) {
        ak[a][b] = fmaf(ki[a], kj[b], ak[a][b]);
        aq[a][b] = fmaf(qi[a], kj[b], aq[a][b]);
      }
  }
  float* sc = p.scratch + (chunk * p.HV + hv) * p.per;
  float* w_out = sc;                 // [C][K]
  float* qg_out = w_out + C * K;     // [C][K]
  float* kdT_out = qg_out + C * K;   // [K][C]
  float* aqk_out = kdT_out + K * C;  // [C][C]
  float* u_out = aqk_out + C * C;    // [C][V]
  float* glast_out = u_out + C * V;
#pragma unroll
  for (int a = 0; a < 4; ++a)
#pragma unroll
    for (int b = 0; b < 4; ++b) {
      const int i = ti + 16 * a, j = tj + 16 * b;
      const float d = j <= i ? expf(gc[i] - gc[j]) : 0.f;  // masked before the exp: exponents <= 0 only
      akk[i * C + j] = j < i ? bs[i] * d * ak[a][b] : 0.f;
      aqk_out[i * C + j] = d * aq[a][b];
    }
  const float glast = gc[C - 1];
  for (int idx = tid; idx < C * K; idx += kThreads) {
    const int r = idx / K, i = idx % K;
    qg_out[idx] = qs[r * KP + i] * expf(gc[r]);
  }
  for (int idx = tid; idx < K * C; idx += kThreads) {
    const int i = idx / C, r = idx % C;
    kdT_out[idx] = ks[r * KP + i] * expf(glast - gc[r]);
  }
  if (tid == 0) glast_out[0] = glast;
  __syncthreads();

  // (I + A_kk) [W | U] = diag(β) [K ⊙ e^G | V]: every column is its own forward substitution
  for (int c = tid; c < NC; c += kThreads) {
    for (int r = 0; r < C; ++r) {
      float x = 0.f;
      if (r < L) {
        x = bs[r] * (c < K ? ks[r * KP + c] * expf(gc[r]) : p.v[(tok0 + r) * p.vs + hv * V + (c - K)]);
        for (int j = 0; j < r; ++j) x = fmaf(-akk[r * C + j], wu[j * NC + c], x);
      }
      wu[r * NC + c] = x;
      if (c < K) w_out[r * K + c] = x;
      else u_out[r * V + (c - K)] = x;
    }
  }
}

__global__ void __launch_bounds__(kThreads) chunk_state_pass(Params p) {
  extern __shared__ float4 sm4[];
  float* sm = reinterpret_cast<float*>(sm4);
  const int K = int(p.K), V = int(p.V);
  float* Ws = sm;             // [C][K]
  float* Qs = Ws + C * K;     // [C][K]
  float* KdT = Qs + C * K;    // [K][C]
  float* Aq = KdT + K * C;    // [C][C]
  float* Us = Aq + C * C;     // [C][BV]
  float* Vn = Us + C * BV;    // [C][BV]
  float* Ss = Vn + C * BV;    // [K][BV] the state tile, S[x][c] = state[hv][v0 + c][x]
  const int tid = threadIdx.x, c = tid % BV, rg = tid / BV;  // rg: 0..7
  const int64_t seq = blockIdx.x, hv = blockIdx.y, v0 = int64_t(blockIdx.z) * BV;
  const bool col_ok = v0 + c < V;
  float* st = p.state.base + int64_t(p.slots[seq]) * p.state.slot_stride + hv * V * K;
  for (int idx = tid; idx < BV * K; idx += kThreads) {
    const int cc = idx / K, x = idx % K;
    Ss[x * BV + cc] = v0 + cc < V ? st[(v0 + cc) * K + x] : 0.f;
  }
  const int64_t ch0 = p.seq_chunk0[seq], ch1 = p.seq_chunk0[seq + 1];
  for (int64_t ch = ch0; ch < ch1; ++ch) {
    const int64_t tok0 = p.offsets[seq] + C * (ch - ch0);
    const int64_t left = p.offsets[seq + 1] - tok0;
  const int L = left < C ? int(left) : C;
    const float* sc = p.scratch + (ch * p.HV + hv) * p.per;
    __syncthreads();  // the previous chunk is done with the shared buffers
    {
      const float4* src = reinterpret_cast<const float4*>(sc);
      float4* dst = reinterpret_cast<float4*>(sm);
      const int n4 = (3 * C * K + C * C) / 4;  // W, Q ⊙ e^G, KdT, A_qk are contiguous in both
      for (int idx = tid; idx < n4; idx += kThreads) dst[idx] = src[idx];
      const float* u = sc + 3 * C * K + C * C;
      for (int idx = tid; idx < C * BV; idx += kThreads) {
        const int r = idx / BV, cc = idx % BV;
        Us[idx] = v0 + cc < V ? u[r * V + v0 + cc] : 0.f;
      }
    }
    const float decay = __expf(sc[3 * C * K + C * C + C * V]);
    __syncthreads();

    // V' = U - W S and (Q ⊙ e^G) S for rows rg + 8m
    float vn[8], oq[8];
#pragma unroll
    for (int m = 0; m < 8; ++m) {
      vn[m] = Us[(rg + 8 * m) * BV + c];
      oq[m] = 0.f;
    }
    for (int x = 0; x < K; x += 4) {
      const float s0 = Ss[x * BV + c], s1 = Ss[(x + 1) * BV + c], s2 = Ss[(x + 2) * BV + c],
                  s3 = Ss[(x + 3) * BV + c];
#pragma unroll
      for (int m = 0; m < 8; ++m) {
        const float4 w = *reinterpret_cast<const float4*>(Ws + (rg + 8 * m) * K + x);
        const float4 q = *reinterpret_cast<const float4*>(Qs + (rg + 8 * m) * K + x);
        vn[m] -= w.x * s0 + w.y * s1 + w.z * s2 + w.w * s3;
        oq[m] += q.x * s0 + q.y * s1 + q.z * s2 + q.w * s3;
      }
    }
#pragma unroll
    for (int m = 0; m < 8; ++m) Vn[(rg + 8 * m) * BV + c] = vn[m];
    __syncthreads();

    // O = (Q ⊙ e^G) S + A_qk V'   (A_qk is zero above the diagonal)
#pragma unroll
    for (int m = 0; m < 8; ++m) {
      const int r = rg + 8 * m;
      float acc = oq[m];
      for (int j = 0; j <= r; j += 4) {
        const float4 a = *reinterpret_cast<const float4*>(Aq + r * C + j);
        acc += a.x * Vn[j * BV + c] + a.y * Vn[(j + 1) * BV + c] + a.z * Vn[(j + 2) * BV + c] +
               a.w * Vn[(j + 3) * BV + c];
      }
      if (r < L && col_ok) p.o[(tok0 + r) * p.HV * V + hv * V + v0 + c] = acc;
    }
    // S <- e^{G_last} S + (K ⊙ e^{G_last-G})ᵀ V'   for state rows rg + 8n
    for (int x = rg; x < K; x += 8) {
      float acc = Ss[x * BV + c] * decay;
      for (int j = 0; j < L; j += 4) {  // rows >= L of V' are 0 (U and W rows are)
        const float4 kd = *reinterpret_cast<const float4*>(KdT + x * C + j);
        acc += kd.x * Vn[j * BV + c] + kd.y * Vn[(j + 1) * BV + c] + kd.z * Vn[(j + 2) * BV + c] +
               kd.w * Vn[(j + 3) * BV + c];
      }
      Ss[x * BV + c] = acc;
    }
  }
  __syncthreads();
  for (int idx = tid; idx < BV * K; idx += kThreads) {
    const int cc = idx / K, x = idx % K;
    if (v0 + cc < V) st[(v0 + cc) * K + x] = Ss[x * BV + cc];
  }
}

size_t prepare_smem(int64_t K, int64_t V) { return sizeof(float) * (2 * C * (K + 1) + C * C + 2 * C + C * (K + V)); }
size_t state_smem(int64_t K) { return sizeof(float) * (3 * C * K + C * C + 2 * C * BV + K * BV); }

}  // namespace

bool delta_rule_prefill_supported(const DeltaRuleShape& s) {
  return s.decay != DeltaDecay::PerKey && s.K > 0 && s.K <= kMaxK && s.K % 4 == 0 && s.V > 0 && s.V <= kMaxV &&
         s.H > 0 && s.HV % s.H == 0;
}

void delta_rule_prefill(const DeltaRuleShape& s, const DeltaRuleInputs& in, std::span<const int64_t> offsets,
                        SlotPool state, const int32_t* slots, float* o, cudaStream_t stream) {
  LINFER_CUDA_CHECK(delta_rule_prefill_supported(s), "cuda delta_rule_prefill: unsupported shape H = ", s.H,
                    ", HV = ", s.HV, ", K = ", s.K, ", V = ", s.V, " (needs decay None or Scalar, K <= ", kMaxK,
                    " and a multiple of 4, V <= ", kMaxV, ", HV a multiple of H)");
  LINFER_CUDA_CHECK(!offsets.empty() && offsets[0] == 0, "cuda delta_rule_prefill: offsets must start at 0");
  const int64_t n = int64_t(offsets.size()) - 1;
  std::vector<int64_t> table(2 * (n + 1));  // [offsets | seq_chunk0 | chunk_seq]
  std::copy(offsets.begin(), offsets.end(), table.begin());
  for (int64_t i = 0; i < n; ++i) {
    LINFER_CUDA_CHECK(offsets[i + 1] >= offsets[i], "cuda delta_rule_prefill: offsets decrease at sequence ", i);
    table[n + 1 + i + 1] = table[n + 1 + i] + (offsets[i + 1] - offsets[i] + C - 1) / C;
  }
  const int64_t n_chunks = table[2 * n + 1];
  if (n_chunks == 0) return;
  LINFER_CUDA_CHECK(in.q && in.k && in.v && in.beta && o && slots && state.base && (s.decay == DeltaDecay::None || in.g),
               "cuda delta_rule_prefill: q, k, v, beta, (g,) o, slots and the state pool must be given");
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = table[n + 1 + i]; c < table[n + 1 + i + 1]; ++c) table.push_back(i);

  Params p{};
  p.H = s.H, p.HV = s.HV, p.K = s.K, p.V = s.V, p.group = s.HV / s.H;
  p.scale = delta_rule_scale(s);
  p.l2norm = s.l2norm_qk;
  p.q = in.q, p.k = in.k, p.v = in.v, p.beta = in.beta;
  p.g = s.decay == DeltaDecay::None ? nullptr : in.g;
  p.qs = in.q_stride ? in.q_stride : s.H * s.K;
  p.ks = in.k_stride ? in.k_stride : s.H * s.K;
  p.vs = in.v_stride ? in.v_stride : s.HV * s.V;
  p.per = scratch_floats(s.K, s.V);
  p.o = o, p.state = state, p.slots = slots;

  int64_t* d_table = nullptr;
  cuda_check(cudaMallocAsync(reinterpret_cast<void**>(&d_table), table.size() * sizeof(int64_t), stream),
             "cudaMallocAsync (delta_rule_prefill chunk table)");
  // pageable source: staged before the call returns, so `table` may go out of scope
  cuda_check(cudaMemcpyAsync(d_table, table.data(), table.size() * sizeof(int64_t), cudaMemcpyHostToDevice, stream),
             "upload of the chunk table");
  cuda_check(cudaMallocAsync(reinterpret_cast<void**>(&p.scratch), size_t(n_chunks * s.HV * p.per) * sizeof(float),
                             stream),
             "cudaMallocAsync (delta_rule_prefill scratch)");
  p.offsets = d_table, p.seq_chunk0 = d_table + n + 1, p.chunk_seq = d_table + 2 * (n + 1);

  const size_t smem1 = prepare_smem(s.K, s.V), smem2 = state_smem(s.K);
  cuda_check(cudaFuncSetAttribute(chunk_prepare, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem1)),
             "chunk_prepare shared memory");
  cuda_check(cudaFuncSetAttribute(chunk_state_pass, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem2)),
             "chunk_state_pass shared memory");
  chunk_prepare<<<dim3(unsigned(n_chunks), unsigned(s.HV)), kThreads, smem1, stream>>>(p);
  check_launch("chunk_prepare");
  chunk_state_pass<<<dim3(unsigned(n), unsigned(s.HV), unsigned((s.V + BV - 1) / BV)), kThreads, smem2, stream>>>(p);
  check_launch("chunk_state_pass");
  cuda_check(cudaFreeAsync(p.scratch, stream), "cudaFreeAsync (delta_rule_prefill scratch)");
  cuda_check(cudaFreeAsync(d_table, stream), "cudaFreeAsync (delta_rule_prefill chunk table)");
}

}  // namespace linfer::kernels::cuda
