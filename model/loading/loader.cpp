// load_model: picks the format from the path (a directory is an HF checkpoint; a file
// must start with the GGUF magic) and hands off to the format's loader.
#include "model/loading/loader.h"

#include <filesystem>

#include "model/formats/gguf.h"
#include "model/tokenizer/hf_tokenizer.h"

namespace pv::model {

LoadedModel load_model(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    LoadedModel m = load_hf_model(path);
    // The directory's tokenizer.json (what AutoTokenizer reads) is the model's tokenizer; one pv
    // cannot reproduce is refused here, naming the file and JSON path, rather than ignored.
    if (has_hf_tokenizer(path)) m.tokenizer = load_hf_tokenizer(path);
    return m;
  }
  auto file = MappedFile::open(path);
  if (!looks_like_gguf(*file)) {
    if (file->size() >= 8 && path.size() >= 12 &&
        path.compare(path.size() - 12, 12, ".safetensors") == 0) {
      throw FormatError(path, FormatError::kNoOffset, "",
                        "a bare .safetensors file has no config: pass its HF model directory "
                        "(config.json + model.safetensors)");
    }
    throw FormatError(path, 0, "",
                      "not a GGUF file (no \"GGUF\" magic) and not an HF model directory");
  }
  return load_gguf_model(std::move(file));
}

}  // namespace pv::model
