// The training input of the ImageNet-resolution path on the CPU in one pass (augmentation.py, ResizedCrop):
// for each k, image index[k] of the split, its box (x1, y1, x2, y2) resampled bilinearly to size x size,
// mirrored where `flips`, and normalised per channel, written straight in the network's memory layout. The same arithmetic as
// `_bilinear_crops` followed by the Normalizer, fused: torch ops (compiled or not) take the batch several
// times through memory; this takes it once.
#include <ATen/Parallel.h>
#include <torch/extension.h>

#include <algorithm>
#include <cmath>
#include <vector>

torch::Tensor normalized_crops(torch::Tensor images, torch::Tensor index, torch::Tensor boxes, torch::Tensor flips,
                               torch::Tensor scale, torch::Tensor shift, int64_t size, bool channels_last) {
  TORCH_CHECK(images.dtype() == torch::kUInt8 && images.dim() == 4, "images: (N, C, H, W) uint8");
  TORCH_CHECK(images.is_contiguous(), "images: contiguous (a copy of the whole split per batch would be slow)");
  index = index.to(torch::kInt64).contiguous();
  TORCH_CHECK(index.numel() == 0 || (index.min().item<int64_t>() >= 0 && index.max().item<int64_t>() < images.size(0)),
              "index out of range");
  boxes = boxes.to(torch::kFloat32).contiguous();
  flips = flips.to(torch::kBool).contiguous();
  scale = scale.to(torch::kFloat32).contiguous();
  shift = shift.to(torch::kFloat32).contiguous();
  const int64_t n = index.size(0), channels = images.size(1), height = images.size(2), width = images.size(3);
  TORCH_CHECK(images.device().is_cpu() && index.device().is_cpu(), "a CPU kernel: images and index on the CPU");
  TORCH_CHECK(boxes.dim() == 2 && boxes.size(0) == n && boxes.size(1) == 4 && flips.numel() == n,
              "boxes (n, 4) and flips (n,) for the n indices");
  TORCH_CHECK(scale.numel() == channels && shift.numel() == channels, "scale and shift: one per channel");
  TORCH_CHECK(size >= 1, "size: at least 1");
  auto format = channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
  auto out = torch::empty({n, channels, size, size}, torch::dtype(torch::kFloat32).memory_format(format));
  const int64_t stride_n = out.stride(0), stride_c = out.stride(1), stride_y = out.stride(2), stride_x = out.stride(3);
  const uint8_t* pixels = images.data_ptr<uint8_t>();
  const int64_t* chosen = index.data_ptr<int64_t>();
  const float* box = boxes.data_ptr<float>();
  const bool* flip = flips.data_ptr<bool>();
  const float* scales = scale.data_ptr<float>();
  const float* shifts = shift.data_ptr<float>();
  float* output = out.data_ptr<float>();

  at::parallel_for(0, n, 1, [&](int64_t begin, int64_t end) {
    std::vector<int64_t> left(size), right(size);
    std::vector<float> weight(size);
    for (int64_t k = begin; k < end; ++k) {
      const uint8_t* image = pixels + chosen[k] * channels * height * width;
      const float x1 = box[4 * k], y1 = box[4 * k + 1], x2 = box[4 * k + 2], y2 = box[4 * k + 3];
      // sample columns: pixel centres at +0.5, clamped to the image (as _bilinear_crops)
      for (int64_t i = 0; i < size; ++i) {
        const int64_t source = flip[k] ? size - 1 - i : i;
        float x = x1 + ((source + 0.5f) / size) * (x2 - x1) - 0.5f;
        x = std::min(std::max(x, 0.0f), float(width - 1));
        const int64_t x0 = static_cast<int64_t>(std::floor(x));
        left[i] = x0;
        right[i] = std::min(x0 + 1, width - 1);
        weight[i] = x - x0;
      }
      for (int64_t row = 0; row < size; ++row) {
        float y = y1 + ((row + 0.5f) / size) * (y2 - y1) - 0.5f;
        y = std::min(std::max(y, 0.0f), float(height - 1));
        const int64_t y0 = static_cast<int64_t>(std::floor(y)), y1_ = std::min(y0 + 1, height - 1);
        const float wy = y - y0;
        for (int64_t c = 0; c < channels; ++c) {
          const uint8_t* top = image + (c * height + y0) * width;
          const uint8_t* bottom = image + (c * height + y1_) * width;
          float* target = output + k * stride_n + c * stride_c + row * stride_y;
          for (int64_t i = 0; i < size; ++i) {
            const float wx = weight[i];
            const float upper = top[left[i]] * (1 - wx) + top[right[i]] * wx;
            const float lower = bottom[left[i]] * (1 - wx) + bottom[right[i]] * wx;
            target[i * stride_x] = (upper * (1 - wy) + lower * wy) * scales[c] + shifts[c];
          }
        }
      }
    }
  });
  return out;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  // without the GIL: the streamed loader's reading thread goes on meanwhile
  m.def("normalized_crops", &normalized_crops, "resized crops, flipped and normalised, in one pass (CPU)",
        py::call_guard<py::gil_scoped_release>());
}
