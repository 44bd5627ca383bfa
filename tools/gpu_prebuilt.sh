# gpu_prebuilt.sh - sourced by the GPU scripts that run the prebuilt bundle
# (.cache/cuda-prebuilt.tar.xz, made by `bash tools/gpu_check.sh --prebuild`):
# unpacks it afresh into $PB (a bundle left there by an earlier commit is
# never reused), puts its libraries and cuBLAS on the library path, sets BIN
# and TEST and prints the commit it was built from.
PB=/tmp/attnscope-cuda-prebuilt
rm -rf "$PB"; mkdir -p "$PB"; tar -xJf .cache/cuda-prebuilt.tar.xz -C "$PB" || exit 1
CUBLAS=$(python3 -c "import nvidia.cublas as m,os;print(os.path.join(list(m.__path__)[0],'lib'))" 2>/dev/null)
export LD_LIBRARY_PATH=$PB/cuda/lib:/usr/local/cuda/lib64:$CUBLAS
BIN=$PB/cuda/bin/attnscope TEST=$PB/cuda/bin/test_cuda
echo "commit $(cat $PB/cuda/COMMIT)"
