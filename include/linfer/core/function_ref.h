#pragma once
// A non-owning reference to a callable: what std::function would be without the heap. It stores a
// pointer to the callable and a trampoline, so passing a lambda of any capture size costs nothing.
// The referenced callable must outlive every call (true for a lambda passed down a call chain).
//
//   void each(FunctionRef<void(int64_t)> f) { for (int64_t i = 0; i < 3; ++i) f(i); }
//   each([&](int64_t i) { sum += i; });

#include <functional>
#include <memory>
#include <type_traits>
#include <utility>

namespace linfer {

template <class Sig>
class FunctionRef;

template <class R, class... Args>
class FunctionRef<R(Args...)> {
 public:
  template <class F>
    requires(!std::is_same_v<std::remove_cvref_t<F>, FunctionRef> &&
             std::is_invocable_r_v<R, F&, Args...>)
  FunctionRef(F&& f) noexcept  // NOLINT: implicit, like std::function
      : obj_(const_cast<void*>(static_cast<const void*>(std::addressof(f)))),
        call_([](void* obj, Args... args) -> R {
          return std::invoke(*static_cast<std::remove_reference_t<F>*>(obj), std::forward<Args>(args)...);
        }) {}

  R operator()(Args... args) const { return call_(obj_, std::forward<Args>(args)...); }

 private:
  void* obj_;
  R (*call_)(void*, Args...);
};

}  // namespace linfer
