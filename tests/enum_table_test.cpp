// enum_entry (host/core/enum_table.h): a table indexed by the enumerator's value, a fallback for
// values outside the enum; and the names the core's tables give, which messages and files show.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "embeddings/bag_ops.h"
#include "embeddings/sharding.h"
#include "host/config/json_reader.h"
#include "host/core/enum_table.h"
#include "host/core/error.h"
#include "host/core/tensor.h"
#include "host/scheduler/scheduler.h"

namespace tessera {
namespace {

enum class Colour : uint8_t { Red, Green, Blue };
enum class Signed : int { A, B };

constexpr const char* kColourNames[] = {"red", "green", "blue"};
constexpr int kColourWeights[] = {10, 20, 30};

// Usable in constant expressions, as a switch was.
static_assert(enum_entry<Colour::Blue>(Colour::Green, kColourWeights, -1) == 20);

TEST(EnumTable, EachEnumeratorGetsItsEntry) {
  EXPECT_EQ(std::string(enum_entry<Colour::Blue>(Colour::Red, kColourNames, "?")), "red");
  EXPECT_EQ(std::string(enum_entry<Colour::Blue>(Colour::Green, kColourNames, "?")), "green");
  EXPECT_EQ(std::string(enum_entry<Colour::Blue>(Colour::Blue, kColourNames, "?")), "blue");
  EXPECT_EQ(enum_entry<Colour::Blue>(Colour::Blue, kColourWeights, -1), 30);
}

TEST(EnumTable, ValuesOutsideTheEnumGetTheFallback) {
  for (int v : {3, 4, 200, 255}) {
    const auto c = static_cast<Colour>(v);
    EXPECT_EQ(std::string(enum_entry<Colour::Blue>(c, kColourNames, "none")), "none") << v;
    EXPECT_EQ(enum_entry<Colour::Blue>(c, kColourWeights, -1), -1) << v;
  }
  constexpr const char* kSigned[] = {"a", "b"};
  EXPECT_EQ(std::string(enum_entry<Signed::B>(static_cast<Signed>(-1), kSigned, "?")), "?");
  EXPECT_EQ(std::string(enum_entry<Signed::B>(static_cast<Signed>(2), kSigned, "?")), "?");
  EXPECT_EQ(std::string(enum_entry<Signed::B>(Signed::B, kSigned, "?")), "b");
}

TEST(EnumTable, ErrorKindNamesAndIds) {
  const struct {
    ErrorKind kind;
    const char* name;
    const char* id;
  } cases[] = {{ErrorKind::Config, "config error", "config"},
               {ErrorKind::Data, "data error", "data"},
               {ErrorKind::Io, "I/O error", "io"},
               {ErrorKind::Backend, "backend error", "backend"},
               {ErrorKind::Shape, "shape error", "shape"},
               {ErrorKind::Usage, "usage error", "usage"},
               {ErrorKind::Internal, "internal error", "internal"}};
  for (const auto& c : cases) {
    EXPECT_EQ(std::string(error_kind_name(c.kind)), c.name);
    EXPECT_EQ(std::string(error_kind_id(c.kind)), c.id);
  }
  EXPECT_EQ(std::string(error_kind_name(static_cast<ErrorKind>(7))), "error");
  EXPECT_EQ(std::string(error_kind_id(static_cast<ErrorKind>(-1))), "internal");
}

TEST(EnumTable, DTypeSizesAndNames) {
  EXPECT_EQ(dtype_size(DType::F32), 4u);
  EXPECT_EQ(dtype_size(DType::I32), 4u);
  EXPECT_EQ(dtype_size(DType::I64), 8u);
  EXPECT_EQ(std::string(dtype_name(DType::F32)), "f32");
  EXPECT_EQ(std::string(dtype_name(DType::I32)), "i32");
  EXPECT_EQ(std::string(dtype_name(DType::I64)), "i64");
  EXPECT_EQ(dtype_size(static_cast<DType>(3)), 0u);
  EXPECT_EQ(std::string(dtype_name(static_cast<DType>(9))), "?");
}

TEST(EnumTable, JsonKindNames) {
  using json::JsonKind;
  EXPECT_EQ(std::string(json::json_kind_name(JsonKind::Absent)), "nothing");
  EXPECT_EQ(std::string(json::json_kind_name(JsonKind::Null)), "null");
  EXPECT_EQ(std::string(json::json_kind_name(JsonKind::Bool)), "a boolean");
  EXPECT_EQ(std::string(json::json_kind_name(JsonKind::Number)), "a number");
  EXPECT_EQ(std::string(json::json_kind_name(JsonKind::String)), "a string");
  EXPECT_EQ(std::string(json::json_kind_name(JsonKind::Array)), "an array");
  EXPECT_EQ(std::string(json::json_kind_name(JsonKind::Object)), "an object");
  EXPECT_EQ(std::string(json::json_kind_name(static_cast<JsonKind>(7))), "?");
}

TEST(EnumTable, EmbeddingAndSchedulerNames) {
  using emb::SparseOptimizer;
  const struct {
    SparseOptimizer kind;
    const char* name;
    int slots;
  } optimizers[] = {{SparseOptimizer::Sgd, "sgd", 0},
                    {SparseOptimizer::Adagrad, "adagrad", 1},
                    {SparseOptimizer::RowwiseAdagrad, "rowwise_adagrad", 1},
                    {SparseOptimizer::LazyAdam, "lazy_adam", 2}};
  for (const auto& o : optimizers) {
    EXPECT_EQ(std::string(emb::sparse_optimizer_name(o.kind)), o.name);
    EXPECT_EQ(emb::state_slots(o.kind), o.slots) << o.name;
  }
  EXPECT_EQ(std::string(emb::sparse_optimizer_name(static_cast<SparseOptimizer>(4))), "?");
  EXPECT_EQ(emb::state_slots(static_cast<SparseOptimizer>(4)), 0);

  EXPECT_EQ(std::string(emb::placement_name(emb::Placement::TableWise)), "table-wise");
  EXPECT_EQ(std::string(emb::placement_name(emb::Placement::RowWise)), "row-wise");
  EXPECT_EQ(std::string(emb::placement_name(emb::Placement::ColumnWise)), "column-wise");
  EXPECT_EQ(std::string(emb::placement_name(static_cast<emb::Placement>(3))), "?");

  using scheduler::StageState;
  EXPECT_EQ(std::string(scheduler::stage_state_name(StageState::Cached)), "cached");
  EXPECT_EQ(std::string(scheduler::stage_state_name(StageState::Partial)), "unfinished");
  EXPECT_EQ(std::string(scheduler::stage_state_name(StageState::Pending)), "to run");
  EXPECT_EQ(std::string(scheduler::stage_state_name(static_cast<StageState>(3))), "?");
}

}  // namespace
}  // namespace tessera
