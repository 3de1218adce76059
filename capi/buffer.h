#pragma once
// gmemkit_buffer (capi/gmemkit.h): the bytes a callback appends its answer to.

#include <string>

struct gmemkit_buffer {
  std::string bytes;
};
