/* The freestanding guest program of gmem-vmm (DESIGN.md, "The reference VMM").
 *
 * Every vCPU runs guest_main(id): a loop of workload steps over its own partition of the data
 * pages, keeping a running digest in its control page (guest_abi.h). The program is deliberately
 * small: guest code runs ~2000x slower than native on the nested host, so each step is a handful
 * of loads and stores and the host does all bulk work (initial contents, hashing).
 *
 * Built with -ffreestanding -nostdlib -mgeneral-regs-only (no SSE/AES: AES-NI ends in
 * KVM_EXIT_INTERNAL_ERROR on this host) and linked at GMEM_GUEST_CODE_GPA by guest.ld. */
#include "vmm/guest/guest_abi.h"

typedef volatile struct gmem_guest_vcpu vcpu_t;
typedef const volatile struct gmem_guest_params params_t;

static inline void out32(uint16_t port, uint32_t value) {
  __asm__ volatile("outl %0, %1" : : "a"(value), "Nd"(port) : "memory");
}

static inline params_t* params(void) { return (params_t*)GMEM_GUEST_PARAMS_GPA; }

static inline vcpu_t* vcpu_page(uint64_t id) {
  return (vcpu_t*)(GMEM_GUEST_VCPU_GPA + id * GMEM_GUEST_PAGE);
}

static inline volatile uint64_t* data_page(uint64_t index) {
  return (volatile uint64_t*)(GMEM_GUEST_DATA_GPA + index * GMEM_GUEST_PAGE);
}

static inline uint64_t gfn_of(uint64_t index) { return (GMEM_GUEST_DATA_GPA >> 12) + index; }

static void panic(uint64_t id, vcpu_t* v, uint64_t code) {
  v->panic_code = code;
  for (;;) out32(GMEM_PORT_PANIC, (uint32_t)id);
}

static void log_write(vcpu_t* v, uint64_t index) {
  if (!params()->log_writes) return;
  uint64_t head = v->log_head;
  if (head >= v->log_capacity) {
    v->log_overflow = 1;
    return;
  }
  ((volatile uint64_t*)v->log_gpa)[head] = gfn_of(index);
  v->log_head = head + 1;
}

/* The first of the step's words: seed-chosen (through r), past the 4 marker words, with room for
 * 8 consecutive words. */
static inline uint64_t first_word(uint64_t r) { return 4 + (r >> 40) % 500; }

/* Reads `words` consecutive words of the page, folds them into d, then rewrites them. Guest code
 * costs ~0.3-0.6 us per instruction on this host, so this is kept to a few instructions a word. */
static uint64_t read_fold_write(volatile uint64_t* page, uint64_t r, uint64_t step, unsigned words,
                                uint64_t d) {
  volatile uint64_t* w = page + first_word(r);
  for (unsigned i = 0; i < words; ++i) d = gmem_guest_mix(d, w[i]);
  uint64_t value = r ^ (step << 20);
  for (unsigned i = 0; i < words; ++i) w[i] = value + i;
  return d;
}

static void write_marker(volatile uint64_t* page, int priv, uint64_t seed, uint64_t gfn) {
  page[0] = priv ? GMEM_MARKER_PRIVATE_LO : GMEM_MARKER_SHARED_LO;
  page[1] = priv ? GMEM_MARKER_PRIVATE_HI : GMEM_MARKER_SHARED_HI;
  page[2] = gmem_guest_marker_tail(seed, gfn, 0);
  page[3] = gmem_guest_marker_tail(seed, gfn, 1);
}

static inline int record_get(uint64_t index) {
  volatile uint8_t* bits = (volatile uint8_t*)GMEM_GUEST_RECORD_GPA;
  return (bits[index >> 3] >> (index & 7)) & 1;
}

static inline void record_set(uint64_t index, int priv) {
  volatile uint8_t* bits = (volatile uint8_t*)GMEM_GUEST_RECORD_GPA;
  uint8_t mask = (uint8_t)(1u << (index & 7));
  bits[index >> 3] = priv ? (uint8_t)(bits[index >> 3] | mask) : (uint8_t)(bits[index >> 3] & ~mask);
}

/* Asks the VMM to make one page private or shared; returns 0 or -errno. */
static int64_t page_state_change(uint64_t id, vcpu_t* v, uint64_t index, int to_private) {
  v->psc_nr = GMEM_HC_MAP_GPA_RANGE;
  v->psc_gpa = gfn_of(index) << 12;
  v->psc_npages = 1;
  v->psc_attrs = to_private ? GMEM_MAP_GPA_RANGE_ENCRYPTED : GMEM_MAP_GPA_RANGE_DECRYPTED;
  v->psc_ret = -1;
  out32(GMEM_PORT_PSC, (uint32_t)id);
  return v->psc_ret;
}

static inline void fill_page(volatile uint64_t* page, uint64_t value) {
  uint64_t count = GMEM_GUEST_PAGE / 8;
  void* dst = (void*)page;
  __asm__ volatile("rep stosq" : "+D"(dst), "+c"(count) : "a"(value) : "memory");
}

/* A conversion step: flip the page's attribute, then rewrite the whole page (fill + marker)
 * before it is ever read again, so the result does not depend on what the platform did to the
 * contents (preserve, zero or scramble). */
static uint64_t convert_page(uint64_t id, vcpu_t* v, uint64_t index, uint64_t r, uint64_t step, uint64_t d) {
  int priv = record_get(index);
  int64_t ret = page_state_change(id, v, index, !priv);
  if (ret == 0) {
    priv = !priv;
    record_set(index, priv);
  }
  volatile uint64_t* page = data_page(index);
  fill_page(page, gmem_guest_mix(r, step));
  write_marker(page, priv, params()->seed, gfn_of(index));
  log_write(v, index);
  d = gmem_guest_mix(d, (uint64_t)ret);
  return gmem_guest_mix(d, (uint64_t)priv);
}

/* One step of the workload on the page r picks; returns the new digest. */
static uint64_t do_step(uint64_t id, vcpu_t* v, uint32_t workload, unsigned words, uint64_t r, uint64_t index,
                        uint64_t step, uint64_t d) {
  volatile uint64_t* page = data_page(index);
  switch (workload) {
    case GMEM_WORKLOAD_DIRTY:
      d = read_fold_write(page, r, step, words, d);
      log_write(v, index);
      return d;
    case GMEM_WORKLOAD_CONVERT:
      if ((r >> 56) % params()->convert_every == 0) return convert_page(id, v, index, r, step, d);
      d = read_fold_write(page, r, step, words, d);
      write_marker(page, record_get(index), params()->seed, gfn_of(index));
      log_write(v, index);
      return d;
    case GMEM_WORKLOAD_IDLE:
      return gmem_guest_mix(d, page[first_word(r)]);
    default:
      panic(id, v, 1);
      return d;
  }
}

/* The VMM keeps budget <= steps_target when the target is finite, so the common path reads one
 * control word per step; the generator state, digest and step live in registers and are written
 * back after every step (the VMM reads them; a saved vCPU state carries the registers). */
void guest_main(uint64_t id) {
  vcpu_t* v = vcpu_page(id);
  params_t* p = params();
  if (p->magic != GMEM_GUEST_PARAMS_MAGIC || p->abi_version != GMEM_GUEST_ABI_VERSION) panic(id, v, 2);
  if (v->part_npages == 0) panic(id, v, 3);
  const uint32_t workload = p->workload;
  const unsigned words = p->words_per_step;
  const uint64_t part_first = v->part_first, part_npages = v->part_npages;
  uint64_t step = v->step, digest = v->digest, rng = v->rng;
  for (;;) {
    if (step >= v->budget) {
      uint64_t target = v->steps_target;
      if (target != 0 && step >= target) break;
      out32(GMEM_PORT_YIELD, (uint32_t)id);
      continue;
    }
    uint64_t r = gmem_guest_splitmix(&rng);
    digest = do_step(id, v, workload, words, r, part_first + r % part_npages, step, digest);
    v->rng = rng;
    v->digest = digest;
    v->step = ++step;
  }
  for (;;) out32(GMEM_PORT_DONE, (uint32_t)id);
}
