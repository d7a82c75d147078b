{
  "targets": [
    {
      "target_name": "segkit_native",
      "sources": ["native/segkit.cc"],
      "cflags_cc": ["-O3", "-march=native", "-fopenmp", "-std=c++17"],
      "ldflags": ["-fopenmp"]
    }
  ]
}
