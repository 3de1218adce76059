#pragma once
// AtomicFile: a new file that appears at its path only once it is complete and durable
// (docs/snapshots.md, "Atomicity"). It is written as a temporary in the same directory — an
// unnamed O_TMPFILE where the filesystem supports it, which a crash or kill -9 cannot leave
// behind, else a named ".NAME.tmp-XXXXXX" — then Commit() fsyncs it, puts it in place with one
// rename (replacing an existing file atomically) and fsyncs the directory. Until Commit() an
// existing file at the path is never touched; the destructor removes an uncommitted temporary.
// Move-only. Thread-safety: one owner.

#include <sys/types.h>

#include <string>
#include <string_view>

#include "base/expected.h"
#include "base/unique_fd.h"

namespace gmem::snapshot {

struct AtomicFileOptions {
  mode_t mode = 0600;
  // Use O_TMPFILE where the filesystem allows it. False forces the named temporary (tests).
  bool allow_unnamed = true;
};

// The prefix and infix of named temporaries: ".NAME.tmp-XXXXXX" beside NAME.
inline constexpr const char* kTempInfix = ".tmp-";

// Whether `name` (a directory entry, no slash) has the shape of a named temporary, complete or
// not: what a save in progress, a crash or kill -9 can leave. Nothing reads such files as images.
bool IsTemporaryName(std::string_view name);

class AtomicFile {
 public:
  // Creates the temporary beside `path`. Fails (kIo, naming the directory) when the directory
  // is missing or not writable, and (kInvalidArgument) when `path` names a directory.
  static Expected<AtomicFile> Create(const std::string& path, const AtomicFileOptions& options = {});

  AtomicFile(AtomicFile&& other) noexcept;
  AtomicFile& operator=(AtomicFile&& other) noexcept;
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  ~AtomicFile();

  // The temporary, open for reading and writing. Valid until Commit() or Abandon().
  int fd() const { return fd_.get(); }
  const std::string& path() const { return path_; }
  // The temporary's path while it has a name; "" for an unnamed (O_TMPFILE) file.
  const std::string& temp_path() const { return temp_path_; }
  bool committed() const { return committed_; }

  // fsync the data, make it appear at path() (replacing what was there), fsync the directory.
  // On failure the temporary is removed and an existing file at path() is left as it was.
  Status Commit();
  // Removes the temporary (what the destructor does if Commit() did not succeed).
  void Abandon();

 private:
  AtomicFile(std::string path, std::string dir, std::string base, UniqueFd dir_fd, UniqueFd fd,
             std::string temp_name);
  Status LinkUnnamed();
  Status RenameNamed();

  std::string path_;
  std::string dir_;
  std::string base_;       // the final name inside the directory
  UniqueFd dir_fd_;
  UniqueFd fd_;
  std::string temp_name_;  // the named temporary inside the directory; "" when unnamed
  std::string temp_path_;  // dir_ + "/" + temp_name_, for messages
  bool committed_ = false;
};

}  // namespace gmem::snapshot
