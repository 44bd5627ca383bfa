# attnscope - build, run, test.  `make run` and `make test` work on a fresh Debian 12.
#
#   make              build/attnscope
#   make run          the TUI on the bundled default model
#   make test         unit + reference + end-to-end tests (WERROR=1 adds -Werror)
#   make asan         the test suite under AddressSanitizer + UBSan (build-asan/)
#   make valgrind     the test suite under valgrind memcheck (build-valgrind/)
#   make fuzz         each libFuzzer target for FUZZ_SECONDS (build-fuzz/, docs/testing.md)
#   make stress       10,000 random keys and resizes through the TUI in tmux
#   make bench        benchmarks (see docs/performance.md)
#   make deps         installs missing Debian packages (apt-get; sudo when not root)
#   make CUDA=1       adds the CUDA backend (engine/cuda, nvcc): build-cuda/attnscope

# A CUDA build keeps its objects apart, so that switching between the two
# builds never links objects compiled for the other.
ifeq ($(CUDA),1)
BUILD   ?= build-cuda
endif
BUILD   ?= build
CC      ?= cc
OPT     ?= -O2
SAN     ?=
WERROR  ?=
CUDA    ?=

PKGS    := openblas libpcre2-8 libutf8proc ncursesw readline
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2
CFLAGS  += -std=c11 $(OPT) -g -march=native -pthread $(WARN) $(if $(WERROR),-Werror) \
           -D_GNU_SOURCE -Iengine -Iviz -Irepl $(PKG_CFLAGS)
LDLIBS  += $(PKG_LIBS) -lcjson -lm -lpthread

ifeq ($(SAN),1)
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif

ENGINE_SRC := $(wildcard engine/*.c engine/cpu/*.c)
VIZ_SRC    := $(wildcard viz/*.c)
REPL_SRC   := $(filter-out repl/main.c,$(wildcard repl/*.c))
TEST_SRC   := $(wildcard tests/unit/test_*.c)

ifeq ($(CUDA),1)
NVCC       ?= nvcc
CUDA_SRC   := $(wildcard engine/cuda/*.cu)
CUDA_OBJ   := $(CUDA_SRC:%.cu=$(BUILD)/%.o)
CFLAGS     += -DATTNSCOPE_CUDA
CUDA_HOME  ?= $(patsubst %/bin/nvcc,%,$(shell command -v $(NVCC)))
LDLIBS     += -L$(CUDA_HOME)/lib64 -lcudart -lcublas -lstdc++
NVFLAGS    ?= -O3 -std=c++17 -arch=sm_90a -Iengine -Xcompiler -fPIC
endif

ENGINE_OBJ := $(ENGINE_SRC:%.c=$(BUILD)/%.o) $(CUDA_OBJ)
VIZ_OBJ    := $(VIZ_SRC:%.c=$(BUILD)/%.o)
REPL_OBJ   := $(REPL_SRC:%.c=$(BUILD)/%.o)
TEST_BIN   := $(TEST_SRC:tests/unit/%.c=$(BUILD)/tests/%)

BIN := $(BUILD)/attnscope
LIBS := $(BUILD)/librepl.a $(BUILD)/libviz.a $(BUILD)/libengine.a

.PHONY: all deps run test unit asan bench clean check-layers fuzz valgrind stress
all: deps $(BIN)

deps:
	@sh tools/deps.sh

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/%.o: %.cu
	@mkdir -p $(dir $@)
	$(NVCC) $(NVFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libengine.a: $(ENGINE_OBJ)
	@rm -f $@; ar rcs $@ $^
$(BUILD)/libviz.a: $(VIZ_OBJ)
	@rm -f $@; ar rcs $@ $^
$(BUILD)/librepl.a: $(REPL_OBJ)
	@rm -f $@; ar rcs $@ $^

$(BIN): $(BUILD)/repl/main.o $(LIBS)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit -MMD -MP $(LDFLAGS) -o $@ $< $(LIBS) $(LDLIBS) -lcmocka

run: all
	./$(BIN)

# Unit and reference tests, then end-to-end tests; ends with "N passed, N failed".
test: deps $(BIN) $(TEST_BIN)
	@sh tests/run.sh $(BUILD)

asan:
	@$(MAKE) --no-print-directory BUILD=build-asan SAN=1 OPT=-O1 test

# Hostile-input and fault testing (docs/testing.md).
FUZZ_SECONDS ?= 60
fuzz:
	@sh tools/deps.sh fuzz
	@sh tests/fuzz/run.sh $(FUZZ_SECONDS)

valgrind:
	@sh tools/deps.sh valgrind
	@sh tests/valgrind.sh

stress: all
	@STRESS_KEYS=10000 sh tests/e2e/stress_tui.sh $(BUILD)

bench: all
	@sh tools/bench.sh $(BIN)

check-layers:
	@! grep -nE '#include *[<"](n?curses|readline)' engine/*.[ch] engine/*/*.[ch] viz/*.[ch] 2>/dev/null | grep -v '^viz/' || \
	   (echo "check-layers: engine/ must not include curses or readline"; false)
	@! grep -nE '\b(printf|fprintf|puts|exit|abort)\s*\(' engine/*.c engine/cpu/*.c || \
	   (echo "check-layers: engine/ must not print or exit"; false)

clean:
	rm -rf build build-asan build-fuzz build-valgrind build-cuda

-include $(ENGINE_OBJ:.o=.d) $(VIZ_OBJ:.o=.d) $(REPL_OBJ:.o=.d) $(BUILD)/repl/main.d $(TEST_BIN:=.d)
