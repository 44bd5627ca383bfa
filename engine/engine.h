/* engine.h - the one header that repl/ and viz/ include. */
#ifndef ENGINE_ENGINE_H
#define ENGINE_ENGINE_H

#include "common.h"
#include "config.h"
#include "model.h"
#include "session.h"
#include "tokenizer.h"
#include "chat.h"
#include "sampler.h"
#include "conv.h"

#endif
