/* gmemkit.h: the stable C API of gmemkit (docs/c-api.md).
 *
 * A VMM written in C, C++ or Rust embeds gmemkit's snapshot and migration engines through this
 * header, without gmemkit's control socket: it hands over its guest memory (one guest_memfd per
 * region) and a table of callbacks (run state, pause/resume, vCPU/device state, memory
 * attributes, dirty log, the guest agent for private pages), and calls gmemkit_snapshot_save() / _restore() or gmemkit_migrate_send() / _receive().
 *
 * Stability: GMEMKIT_API_VERSION changes only when an existing declaration changes meaning or
 * layout. New functions, and new members at the END of the structs that carry a `struct_size`
 * member, arrive without a change; the library reads only the `struct_size` bytes the caller
 * declares, so a program built against an older header keeps working.
 *
 * Errors: every function that can fail returns a gmemkit_code and, when `err` is not NULL, fills
 * it with the code, the errno behind it (0 if none) and a one-line message. No global error
 * state: the message belongs to that call.
 *
 * Threading: the functions are thread-safe except where a handle says otherwise. A gmemkit_vm
 * runs one operation at a time (calls on one vm from several threads must be serialised by the
 * caller); gmemkit_vm_cancel() may be called from any thread, and from a signal handler. The
 * callbacks are called on the thread that called the operation, never concurrently.
 *
 * Secrets: keys are taken from memory, fds or files (never from a command line), copied into
 * buffers that are zeroed when freed, and never appear in messages.
 */
#ifndef GMEMKIT_H
#define GMEMKIT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GMEMKIT_API_VERSION 1

/* The library's version, "MAJOR.MINOR.PATCH". Static storage; never NULL. */
const char* gmemkit_version(void);
/* The GMEMKIT_API_VERSION the library was built with. A program checks it against its own. */
int gmemkit_api_version(void);

/* ---- Errors ------------------------------------------------------------------------------- */

typedef enum gmemkit_code {
  GMEMKIT_OK = 0,
  GMEMKIT_ERR_IO = 1,               /* the OS said no: open, read, write, mmap, disk full */
  GMEMKIT_ERR_CORRUPT = 2,          /* malformed or truncated image */
  GMEMKIT_ERR_AUTH = 3,             /* wrong key, or the image was tampered with */
  GMEMKIT_ERR_INCOMPATIBLE = 4,     /* well-formed but not for this build (newer version, ...) */
  GMEMKIT_ERR_PROTOCOL = 5,         /* the VMM's answers broke the contract (e.g. wrong layout) */
  GMEMKIT_ERR_PEER_ABORTED = 6,     /* the migration peer gave up, vanished, or left it in doubt */
  GMEMKIT_ERR_KVM = 7,              /* a KVM ioctl failed */
  GMEMKIT_ERR_UNSUPPORTED = 8,      /* this build, kernel or VMM lacks the feature */
  GMEMKIT_ERR_INVALID_ARGUMENT = 9, /* the caller passed something wrong */
  GMEMKIT_ERR_CANCELLED = 10,       /* gmemkit_vm_cancel() */
  GMEMKIT_ERR_CALLBACK = 11,        /* a VMM callback returned nonzero */
  GMEMKIT_ERR_NO_MEMORY = 12        /* an allocation failed */
} gmemkit_code;

#define GMEMKIT_ERROR_MESSAGE_BYTES 512

typedef struct gmemkit_error {
  int code;      /* a gmemkit_code */
  int sys_errno; /* the errno behind it, or 0 */
  /* One line, NUL-terminated, truncated with "..." if longer than the buffer. */
  char message[GMEMKIT_ERROR_MESSAGE_BYTES];
} gmemkit_error;

/* A stable lowercase name for `code` ("corrupt", "auth", ...); "unknown" for other values. */
const char* gmemkit_code_name(int code);

/* ---- Keys --------------------------------------------------------------------------------- */

/* The key an image is sealed with. Immutable once made: may be shared between threads. */
typedef struct gmemkit_key gmemkit_key;

/* A raw 32-byte key (the bytes a `gmem-migrate keygen` key file holds in hex). */
int gmemkit_key_from_bytes(const void* key, size_t len, gmemkit_key** out, gmemkit_error* err);
/* A key file's text ("gmemkit-key-v1:<64 hex>") read to EOF from `fd`. The fd stays open. */
int gmemkit_key_from_key_fd(int fd, gmemkit_key** out, gmemkit_error* err);
/* A key file at `path`; refused if group or others may read it. */
int gmemkit_key_from_key_file(const char* path, gmemkit_key** out, gmemkit_error* err);
/* A passphrase (1..1024 bytes; the image's key is derived from it with scrypt). */
int gmemkit_key_from_passphrase(const void* passphrase, size_t len, gmemkit_key** out, gmemkit_error* err);
/* Zeroes and frees the key. NULL is a no-op. */
void gmemkit_key_free(gmemkit_key* key);

/* ---- The VM: memory and callbacks --------------------------------------------------------- */

/* One region of guest memory, as the VMM hands it over or as gmemkit asks for it. */
typedef struct gmemkit_region {
  uint32_t id;         /* unique within the VM */
  uint32_t page_size;  /* 4096 (0 means 4096) */
  uint64_t gpa;        /* guest-physical base, page-aligned */
  uint64_t size_bytes; /* a multiple of page_size */
  uint64_t fd_offset;  /* where the region starts in fd, page-aligned */
  uint64_t gmem_flags; /* the guest_memfd's creation flags (GUEST_MEMFD_FLAG_MMAP | ...) */
  int fd;              /* a guest_memfd created with GUEST_MEMFD_FLAG_MMAP, ending where the
                          region ends (fd_offset + size_bytes); borrowed: gmemkit keeps a dup */
} gmemkit_region;

typedef enum gmemkit_run_state {
  GMEMKIT_RUN_INCOMING = 1, /* memory not yet loaded: a restore may fill it */
  GMEMKIT_RUN_RUNNING = 2,
  GMEMKIT_RUN_PAUSED = 3,
  GMEMKIT_RUN_FINISHED = 4
} gmemkit_run_state;

/* Page attributes, one byte per page. */
#define GMEMKIT_PAGE_SHARED 0
#define GMEMKIT_PAGE_PRIVATE 1

/* The guest agent (docs/agent-protocol.md): the in-guest service (e.g. an SVSM service) that
 * alone reads and writes private pages, and hands them to the host only as sealed blobs. Its
 * area of shared guest memory (mailbox and bounce buffer) is at a fixed guest-physical address
 * (§2), inside a registered region; gmemkit writes requests there through its own mapping. */
#define GMEMKIT_AGENT_AREA_GPA 0x140000u
#define GMEMKIT_AGENT_AREA_BYTES 0xc0000u

/* What the agent_query callback reports (the `agent` object of the control socket's `query`).
 * gmemkit zeroes it and sets struct_size to the size it knows before the call; the callback
 * writes only members that end within struct_size (a VMM built against a newer header may run
 * with an older library). */
typedef struct gmemkit_agent_info {
  size_t struct_size;
  int available;         /* nonzero: the guest has an agent that answers agent_doorbell */
  int provisioned;       /* nonzero: the agent holds its platform key (it can seal and open) */
  uint64_t area_gpa;     /* the agent area's base; 0 means GMEMKIT_AGENT_AREA_GPA, the only one
                            this version supports */
  uint64_t conversions;  /* shared<->private conversions since the VM started: it changes before
                            get_attributes reports a converted page (a live migration's fence) */
} gmemkit_agent_info;

/* A byte buffer gmemkit owns, that a callback appends its answer to. */
typedef struct gmemkit_buffer gmemkit_buffer;
/* Appends `len` bytes. Returns 0, or ENOMEM. */
int gmemkit_buffer_append(gmemkit_buffer* buffer, const void* data, size_t len);

/* The VMM's side. Every callback gets `ctx` first and returns 0 on success or a positive errno
 * value on failure (the operation then fails with GMEMKIT_ERR_CALLBACK, naming the callback).
 * Callbacks marked optional may be NULL. */
typedef struct gmemkit_vmm_callbacks {
  size_t struct_size; /* sizeof(gmemkit_vmm_callbacks) */
  void* ctx;
  /* Required. Stores the VM's gmemkit_run_state in *state. */
  int (*run_state)(void* ctx, int* state);
  /* Stop and restart the vCPUs: when pause returns, no vCPU writes guest memory. Both are
   * idempotent (pausing a paused VM succeeds). Required to save a running VM (pause) and to run
   * it again after a save or restore (resume). */
  int (*pause)(void* ctx);
  int (*resume)(void* ctx);
  /* Optional: this copy of the VM is no longer the VM: after a failed restore or receive (its
   * memory is half-written), or after a send completed (the VM runs on the receiver). */
  int (*discard)(void* ctx);
  /* The vCPU/device state, an opaque non-empty blob: get_state appends it to `out` (save),
   * set_state loads it (restore, before resume). */
  int (*get_state)(void* ctx, gmemkit_buffer* out);
  int (*set_state)(void* ctx, const void* data, size_t len);
  /* Optional: one byte per page of region `region_id` (GMEMKIT_PAGE_*). NULL: all shared.
   * A private page can only be saved through the guest's agent (agent_doorbell). */
  int (*get_attributes)(void* ctx, uint32_t region_id, uint8_t* attrs, uint64_t npages);
  /* Optional: the restored VM's attributes. NULL: the image must hold shared pages only. */
  int (*set_attributes)(void* ctx, uint32_t region_id, const uint8_t* attrs, uint64_t npages);
  /* Optional: fetch-and-clear the pages written since the last call, `nwords` 64-bit words of
   * one bit per page (bit i of word w: page 64*w+i). NULL: gmemkit compares page contents. */
  int (*dirty_log)(void* ctx, uint32_t region_id, uint64_t* bitmap, uint64_t nwords);
  /* Optional: create the incoming VM's memory for `layout` (its fd members are -1) and store one
   * fd per region in fds[i] (borrowed: gmemkit keeps a dup). NULL: the memory registered with
   * gmemkit_vm_set_memory() is used, and its layout must equal the image's. */
  int (*prepare_incoming)(void* ctx, const gmemkit_region* layout, size_t count, int* fds);
  /* Optional: a digest of the VM that equals the saved VM's exactly when the restore is right
   * (appended as text). NULL: gmemkit hashes all guest memory, attributes and the state blob. */
  int (*digest)(void* ctx, gmemkit_buffer* out);
  /* Private pages, through the guest's agent (docs/c-api.md, "Private pages"). Both optional;
   * without them a VM with private pages fails with GMEMKIT_ERR_UNSUPPORTED.
   * agent_query: fills *info (see gmemkit_agent_info). Required with agent_doorbell.
   * agent_doorbell: gmemkit wrote a request into the agent's mailbox; hand it to the agent and
   * return only after the agent wrote its response into the response page (a synchronous
   * doorbell, docs/agent-protocol.md §3.4). The agent's own errors are in that page, not the
   * return value: nonzero means the agent could not be reached. One request at a time, on the
   * operation's thread; the vCPUs may be running. */
  int (*agent_query)(void* ctx, gmemkit_agent_info* info);
  int (*agent_doorbell)(void* ctx);
} gmemkit_vmm_callbacks;

/* A VM as gmemkit sees it: its callbacks, and its memory once registered. */
typedef struct gmemkit_vm gmemkit_vm;

/* Copies `callbacks` (the first callbacks->struct_size bytes). */
int gmemkit_vm_new(const gmemkit_vmm_callbacks* callbacks, gmemkit_vm** out, gmemkit_error* err);
/* Frees the vm and the fds it holds. NULL is a no-op. REQUIRES: no operation running on it. */
void gmemkit_vm_free(gmemkit_vm* vm);
/* Registers the VM's memory (replacing any earlier registration): `count` regions, fds dup'ed.
 * Checked: page alignment, no overlap, unique ids; each fd is a guest_memfd of the right size. */
int gmemkit_vm_set_memory(gmemkit_vm* vm, const gmemkit_region* regions, size_t count, gmemkit_error* err);
/* Cancels the operation running on `vm` (it fails with GMEMKIT_ERR_CANCELLED and leaves the VM
 * as a failed operation does). Async-signal-safe. Without a running operation: no effect. */
void gmemkit_vm_cancel(gmemkit_vm* vm);

/* ---- Snapshots ---------------------------------------------------------------------------- */

#define GMEMKIT_COMPRESSION_ZSTD 0 /* the default */
#define GMEMKIT_COMPRESSION_NONE 1

typedef struct gmemkit_save_options {
  size_t struct_size; /* sizeof(gmemkit_save_options) */
  /* The image; written to a temporary beside it and renamed only when complete and fsynced,
   * so an existing file there stays intact on failure. */
  const char* path;
  /* Optional: an earlier image of this VM; the new one stores only the pages that changed. */
  const char* parent_path;
  int compression; /* GMEMKIT_COMPRESSION_* */
  int stop;        /* nonzero: leave the VM paused after a successful save */
} gmemkit_save_options;

typedef struct gmemkit_save_result {
  uint64_t file_bytes;
  uint64_t guest_pages; /* pages of guest memory the image describes */
  uint64_t data_pages;  /* stored with contents */
  uint64_t zero_pages;
  uint64_t paused_ms;   /* how long this call kept a running VM paused */
  int left_paused;      /* the VM is paused now */
} gmemkit_save_result;

/* Saves the VM's memory (through the registered fds), attributes and state: pauses a running VM
 * (the pause callback), writes the image, and resumes it unless options->stop. On failure: no
 * file appears at path, and a VM this call paused is resumed. `result` may be NULL. */
int gmemkit_snapshot_save(gmemkit_vm* vm, const gmemkit_key* key, const gmemkit_save_options* options,
                          gmemkit_save_result* result, gmemkit_error* err);

typedef struct gmemkit_restore_options {
  size_t struct_size; /* sizeof(gmemkit_restore_options) */
  /* The image: `path`, or when path is NULL the regular file open at `fd` (read from its start
   * with an offset of its own; the fd stays the caller's). */
  const char* path;
  int fd;
  /* Where the parents of an incremental image are found (NULL: the directory of path, or of
   * the file open at fd). */
  const char* parent_dir;
  int leave_paused; /* nonzero: do not call resume after the restore verified */
} gmemkit_restore_options;

typedef struct gmemkit_restore_result {
  uint64_t file_bytes;  /* of the whole chain */
  uint64_t data_pages;
  uint64_t zero_pages;
  uint64_t images;      /* 1, or more for an incremental image with its parents */
  int resumed;
} gmemkit_restore_result;

/* Restores an image into the VM, whose run state must be GMEMKIT_RUN_INCOMING. The key and the
 * image header are checked before any callback runs; then the memory is filled (prepare_incoming
 * or the registered memory), attributes and state are set, the VM's digest is compared with the
 * saved one, and only then the VM resumes. On failure the VM never resumes, and discard is
 * called once the memory was touched. `result` may be NULL. */
int gmemkit_snapshot_restore(gmemkit_vm* vm, const gmemkit_key* key, const gmemkit_restore_options* options,
                             gmemkit_restore_result* result, gmemkit_error* err);

/* ---- Live migration ----------------------------------------------------------------------- */

typedef struct gmemkit_migrate_options {
  size_t struct_size; /* sizeof(gmemkit_migrate_options) */
  /* The peer: a URI ("tcp:HOST:PORT" or "unix:PATH"; the receiver listens there, the sender
   * connects), or, when uri is NULL, `fd`: a connected stream socket (borrowed; e.g. one end of a
   * socketpair, or a connection the VMM set up itself). */
  const char* uri;
  int fd;
  /* Sender only. */
  uint32_t channels;        /* parallel connections over a URI (0: 2); an fd carries one */
  uint64_t max_downtime_ms; /* the pause the precopy aims for (0: 300) */
  uint32_t max_passes;      /* precopy passes at most, the first included (0: 30) */
  int compression;          /* GMEMKIT_COMPRESSION_* */
  int verify_memory;        /* nonzero: both sides compare the VMs' digests before the switch */
  /* Receiver only. */
  int timeout_ms;           /* how long to wait for the sender to connect (0: forever) */
  int leave_paused;         /* nonzero: do not call resume when the VM arrived */
} gmemkit_migrate_options;

typedef struct gmemkit_migrate_result {
  uint64_t wire_bytes;
  uint64_t data_pages;
  uint64_t zero_pages;
  uint32_t passes;      /* sender: precopy passes, the final one included */
  uint64_t downtime_ms; /* sender: from the pause to the receiver's resume */
  uint64_t total_ms;
  int resumed;          /* receiver: the VM runs */
} gmemkit_migrate_result;

/* Sends the running (or paused) VM to a receiver: precopy passes while the guest runs (changes
 * found by dirty_log, or by comparing page contents), then pause, the rest with the state, and a
 * two-phase switchover. On success the VM runs on the receiver and this side's `discard` is
 * called. A failure before the receiver confirmed leaves this VM running (resumed if this call
 * paused it); a connection lost after it leaves the VM paused, and the message says "in doubt".
 * The key must be a key, not a passphrase (the channel's handshake proves it). */
int gmemkit_migrate_send(gmemkit_vm* vm, const gmemkit_key* key, const gmemkit_migrate_options* options,
                         gmemkit_migrate_result* result, gmemkit_error* err);

/* Receives a VM into `vm` (run state GMEMKIT_RUN_INCOMING; memory as for a restore) and resumes
 * it only after every record verified and the sender committed. Any failure before that calls
 * `discard` and the VM never runs. */
int gmemkit_migrate_receive(gmemkit_vm* vm, const gmemkit_key* key, const gmemkit_migrate_options* options,
                            gmemkit_migrate_result* result, gmemkit_error* err);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* GMEMKIT_H */
