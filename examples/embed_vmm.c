/* embed_vmm: a tiny "VMM" that embeds gmemkit's snapshot engine through the C API (gmemkit.h,
 * docs/c-api.md), without gmemkit's control socket.
 *
 * It creates a KVM VM and lays out its guest memory as two guest_memfd regions (mmap-able,
 * initially shared) filled with a known pattern (some pages left zero), hands the memory and its callbacks to gmemkit, saves a snapshot of the running "VM",
 * changes a few pages, saves an incremental snapshot on top, and restores each image into a
 * fresh VM whose memory is checked byte for byte against what was saved, along with the vCPU
 * state blob and the run state. The key is drawn at random in memory (never on a command line).
 *
 * Usage: embed_vmm DIR   (writes DIR/full.img and DIR/incr.img)
 * Exit status 0 and a summary line when every check passed; 1 and a one-line reason otherwise;
 * 77 (skipped) where /dev/kvm or guest_memfd with mmap is not available.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <unistd.h>

#include "gmemkit.h"

/* guest_memfd creation, include/uapi/linux/kvm.h of Linux 6.18 (older system headers lack it). */
struct create_guest_memfd {
  uint64_t size;
  uint64_t flags;
  uint64_t reserved[6];
};
#define CREATE_GUEST_MEMFD _IOWR(KVMIO, 0xd4, struct create_guest_memfd)
#define GMEM_FLAG_MMAP (UINT64_C(1) << 0)
#define GMEM_FLAG_INIT_SHARED (UINT64_C(1) << 1)
#define GMEM_FLAGS (GMEM_FLAG_MMAP | GMEM_FLAG_INIT_SHARED)

#define NREGIONS 2
#define PAGE 4096u

/* The guest's layout: low memory and a second bank above 4 GiB. */
static const uint64_t kGpa[NREGIONS] = {0, UINT64_C(1) << 32};
static const uint64_t kBytes[NREGIONS] = {8u << 20, 4u << 20};

/* The vCPU/device state this VMM keeps: what it hands gmemkit as an opaque blob. */
struct vcpu_state {
  uint64_t rip, rsp, cr3;
  uint32_t generation;
};

struct vm {
  const char* name;
  int vm_fd; /* the KVM VM that owns the guest_memfds */
  int run_state; /* gmemkit_run_state */
  int fds[NREGIONS];
  uint8_t* mem[NREGIONS];
  struct vcpu_state vcpu;
  int pauses, resumes, discards;
};

static void die(const char* what, const gmemkit_error* err) {
  if (err != NULL) {
    fprintf(stderr, "embed_vmm: %s: %s (%s)\n", what, err->message, gmemkit_code_name(err->code));
  } else {
    fprintf(stderr, "embed_vmm: %s\n", what);
  }
  exit(1);
}

/* ---- the callbacks ---- */

static int cb_run_state(void* ctx, int* state) {
  *state = ((struct vm*)ctx)->run_state;
  return 0;
}

static int cb_pause(void* ctx) {
  struct vm* vm = ctx;
  if (vm->run_state != GMEMKIT_RUN_RUNNING && vm->run_state != GMEMKIT_RUN_PAUSED) return EINVAL;
  vm->run_state = GMEMKIT_RUN_PAUSED;
  vm->pauses++;
  return 0;
}

static int cb_resume(void* ctx) {
  struct vm* vm = ctx;
  if (vm->run_state != GMEMKIT_RUN_PAUSED && vm->run_state != GMEMKIT_RUN_INCOMING) return EINVAL;
  vm->run_state = GMEMKIT_RUN_RUNNING;
  vm->resumes++;
  return 0;
}

static int cb_discard(void* ctx) {
  struct vm* vm = ctx;
  vm->run_state = GMEMKIT_RUN_FINISHED;
  vm->discards++;
  return 0;
}

static int cb_get_state(void* ctx, gmemkit_buffer* out) {
  struct vm* vm = ctx;
  return gmemkit_buffer_append(out, &vm->vcpu, sizeof(vm->vcpu));
}

static int cb_set_state(void* ctx, const void* data, size_t len) {
  struct vm* vm = ctx;
  if (len != sizeof(vm->vcpu)) return EINVAL;
  memcpy(&vm->vcpu, data, len);
  return 0;
}

/* ---- memory ---- */

static void skip(const char* why) {
  printf("embed_vmm: skipped: %s\n", why);
  exit(77);
}

static void create_memory(struct vm* vm) {
  int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (kvm < 0) skip("/dev/kvm is not available");
  vm->vm_fd = ioctl(kvm, KVM_CREATE_VM, 0);
  close(kvm);
  if (vm->vm_fd < 0) die("KVM_CREATE_VM failed", NULL);
  for (int r = 0; r < NREGIONS; r++) {
    struct create_guest_memfd req;
    memset(&req, 0, sizeof(req));
    req.size = kBytes[r];
    req.flags = GMEM_FLAGS;
    vm->fds[r] = ioctl(vm->vm_fd, CREATE_GUEST_MEMFD, &req);
    if (vm->fds[r] < 0) skip("this kernel cannot create an mmap-able guest_memfd");
    vm->mem[r] = mmap(NULL, kBytes[r], PROT_READ | PROT_WRITE, MAP_SHARED, vm->fds[r], 0);
    if (vm->mem[r] == MAP_FAILED) die("mmap failed", NULL);
  }
}

/* The pattern of page `page` of region `r` after `generation` rounds of writes: every third
 * page stays zero; a page in the first 64 of region 0 changes with each generation. */
static uint64_t pattern(int r, uint64_t page, uint32_t generation) {
  if (page % 3 == 2) return 0;
  uint64_t g = (r == 0 && page < 64) ? generation : 0;
  return (page + 1) * UINT64_C(0x9e3779b97f4a7c15) ^ ((uint64_t)r << 56) ^ (g << 40);
}

static void write_pattern(struct vm* vm, uint32_t generation) {
  for (int r = 0; r < NREGIONS; r++) {
    for (uint64_t page = 0; page < kBytes[r] / PAGE; page++) {
      uint64_t v = pattern(r, page, generation);
      uint64_t* words = (uint64_t*)(vm->mem[r] + page * PAGE);
      for (unsigned w = 0; w < PAGE / 8; w++) words[w] = v == 0 ? 0 : v + w;
    }
  }
  vm->vcpu.generation = generation;
  vm->vcpu.rip = 0x100000 + generation;
}

static void check_pattern(const struct vm* vm, uint32_t generation) {
  for (int r = 0; r < NREGIONS; r++) {
    for (uint64_t page = 0; page < kBytes[r] / PAGE; page++) {
      uint64_t v = pattern(r, page, generation);
      const uint64_t* words = (const uint64_t*)(vm->mem[r] + page * PAGE);
      for (unsigned w = 0; w < PAGE / 8; w++) {
        if (words[w] != (v == 0 ? 0 : v + w)) {
          fprintf(stderr, "embed_vmm: %s: region %d page %" PRIu64 " word %u differs after restore\n", vm->name, r, page, w);
          exit(1);
        }
      }
    }
  }
  if (vm->vcpu.generation != generation || vm->vcpu.rip != 0x100000 + generation) {
    fprintf(stderr, "embed_vmm: %s: the vCPU state differs after restore\n", vm->name);
    exit(1);
  }
}

static gmemkit_vm* attach(struct vm* vm) {
  gmemkit_vmm_callbacks cb;
  memset(&cb, 0, sizeof(cb));
  cb.struct_size = sizeof(cb);
  cb.ctx = vm;
  cb.run_state = cb_run_state;
  cb.pause = cb_pause;
  cb.resume = cb_resume;
  cb.discard = cb_discard;
  cb.get_state = cb_get_state;
  cb.set_state = cb_set_state;
  gmemkit_error err;
  gmemkit_vm* handle = NULL;
  if (gmemkit_vm_new(&cb, &handle, &err) != GMEMKIT_OK) die("gmemkit_vm_new", &err);
  gmemkit_region regions[NREGIONS];
  for (int r = 0; r < NREGIONS; r++) {
    memset(&regions[r], 0, sizeof(regions[r]));
    regions[r].id = (uint32_t)r;
    regions[r].page_size = PAGE;
    regions[r].gpa = kGpa[r];
    regions[r].size_bytes = kBytes[r];
    regions[r].gmem_flags = GMEM_FLAGS;
    regions[r].fd = vm->fds[r];
  }
  if (gmemkit_vm_set_memory(handle, regions, NREGIONS, &err) != GMEMKIT_OK) die("gmemkit_vm_set_memory", &err);
  return handle;
}

static void restore_into_fresh_vm(const char* name, const char* path, const gmemkit_key* key, uint32_t generation) {
  struct vm fresh;
  memset(&fresh, 0, sizeof(fresh));
  fresh.name = name;
  fresh.run_state = GMEMKIT_RUN_INCOMING;
  create_memory(&fresh);
  gmemkit_vm* handle = attach(&fresh);
  gmemkit_restore_options opts;
  memset(&opts, 0, sizeof(opts));
  opts.struct_size = sizeof(opts);
  opts.path = path;
  gmemkit_restore_result res;
  gmemkit_error err;
  if (gmemkit_snapshot_restore(handle, key, &opts, &res, &err) != GMEMKIT_OK) die("restore", &err);
  if (fresh.run_state != GMEMKIT_RUN_RUNNING || !res.resumed || fresh.resumes != 1) {
    die("the restored VM is not running", NULL);
  }
  check_pattern(&fresh, generation);
  printf("restored %s: %" PRIu64 " image(s), %" PRIu64 " data pages, memory and state match\n", path, res.images,
         res.data_pages);
  gmemkit_vm_free(handle);
}

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: embed_vmm DIR\n");
    return 1;
  }
  if (gmemkit_api_version() != GMEMKIT_API_VERSION) die("the library's API version differs from this header's", NULL);
  printf("gmemkit %s, C API %d\n", gmemkit_version(), gmemkit_api_version());

  char full[4096], incr[4096];
  snprintf(full, sizeof(full), "%s/full.img", argv[1]);
  snprintf(incr, sizeof(incr), "%s/incr.img", argv[1]);

  uint8_t secret[32];
  if (getrandom(secret, sizeof(secret), 0) != (ssize_t)sizeof(secret)) die("getrandom failed", NULL);
  gmemkit_error err;
  gmemkit_key* key = NULL;
  if (gmemkit_key_from_bytes(secret, sizeof(secret), &key, &err) != GMEMKIT_OK) die("key", &err);
  memset(secret, 0, sizeof(secret));

  struct vm source;
  memset(&source, 0, sizeof(source));
  source.name = "source";
  source.run_state = GMEMKIT_RUN_RUNNING;
  create_memory(&source);
  write_pattern(&source, 1);
  gmemkit_vm* handle = attach(&source);

  gmemkit_save_options save;
  memset(&save, 0, sizeof(save));
  save.struct_size = sizeof(save);
  save.path = full;
  gmemkit_save_result saved;
  if (gmemkit_snapshot_save(handle, key, &save, &saved, &err) != GMEMKIT_OK) die("save", &err);
  const uint64_t full_data_pages = saved.data_pages;
  if (source.run_state != GMEMKIT_RUN_RUNNING || source.pauses == 0 || source.resumes != 1) {
    die("the saved VM was not paused, then resumed once", NULL);
  }
  printf("saved %s: %" PRIu64 " bytes, %" PRIu64 " data pages, %" PRIu64 " zero pages, paused %" PRIu64 " ms\n", full,
         saved.file_bytes, saved.data_pages, saved.zero_pages, saved.paused_ms);

  /* The guest runs on and writes: the increment stores only what changed. */
  write_pattern(&source, 2);
  save.path = incr;
  save.parent_path = full;
  if (gmemkit_snapshot_save(handle, key, &save, &saved, &err) != GMEMKIT_OK) die("incremental save", &err);
  printf("saved %s: %" PRIu64 " bytes, %" PRIu64 " data pages\n", incr, saved.file_bytes, saved.data_pages);
  if (saved.data_pages == 0 || saved.data_pages * 4 > full_data_pages) {
    die("the increment does not hold just the changed pages", NULL);
  }

  restore_into_fresh_vm("restored-full", full, key, 1);
  restore_into_fresh_vm("restored-incr", incr, key, 2);

  gmemkit_vm_free(handle);
  gmemkit_key_free(key);
  printf("embed_vmm: OK\n");
  return 0;
}
