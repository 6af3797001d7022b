// A zero-initialised heap buffer aligned to a cache line, for SIMD tables and scratch tiles.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>

namespace colmax {

template <class T>
class AlignedBuffer {
 public:
  static constexpr std::size_t alignment = 64;

  void assign_zero(std::size_t n) {
    const std::size_t bytes = ((n * sizeof(T) + alignment - 1) / alignment) * alignment;
    void* p = std::aligned_alloc(alignment, bytes == 0 ? alignment : bytes);
    if (p == nullptr) throw std::bad_alloc();
    std::memset(p, 0, bytes);
    ptr_.reset(static_cast<T*>(p));
    size_ = n;
  }
  T* data() { return ptr_.get(); }
  const T* data() const { return ptr_.get(); }
  std::size_t size() const { return size_; }

 private:
  struct Free {
    void operator()(T* p) const { std::free(p); }
  };
  std::unique_ptr<T, Free> ptr_;
  std::size_t size_ = 0;
};

}  // namespace colmax
