#include "tokenizer/json_fields.h"

#include <fstream>
#include <sstream>

namespace linfer::tok {

json read_json_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  LINFER_CHECK(in, "{}: cannot open", path);
  std::stringstream text;
  text << in.rdbuf();
  try {
    return json::parse(text.str());
  } catch (const json::parse_error& e) {
    fail("{}: not valid JSON: {}", path, e.what());
  }
}

const json& required(const json& obj, const std::string& key, const std::string& where) {
  LINFER_CHECK(obj.is_object(), "{}: expected an object, found {}", where, obj.type_name());
  auto it = obj.find(key);
  LINFER_CHECK(it != obj.end() && !it->is_null(), "{}: missing field '{}'", where, key);
  return *it;
}

}  // namespace linfer::tok
