// Fixture for tests/tools/function_lengths_test.py: the line counts it expects are in the names
// (lines from the name to the closing brace, as lizard counts them; the constructor has 5).
#include <vector>

namespace outer {
namespace {

int free_function_5(int a) {
  // a comment with a brace {
  const char* s = "a string with a brace { and an escaped quote \" }";
  return a + (s != nullptr);
}

}  // namespace

struct Widget {
  Widget(int n)
      : values_{1, 2, 3},
        sizes_(std::vector<int>({n, n})) {
    values_.push_back(n);
  }
  int method_4() const noexcept {
    auto f = [](int x) { return x + 1; };
    return f(1);
  }
  std::vector<int> values_;
  std::vector<int> sizes_;
};

auto trailing_3(int x) -> int {
  return x * 2;
}

const std::vector<int> kTable = {1, 2, 3};

template <typename T>
T raw_7() {
  const char* r = R"x(a raw string with } and { and ")x";
  (void)r;
  if (true) {
  }
  return T{};
}

}  // namespace outer
