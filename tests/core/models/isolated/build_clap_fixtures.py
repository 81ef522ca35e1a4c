"""Random-weight MS-CLAP and LAION-CLAP releases, built inside the family's environment.

Run with the environment's Python (its msclap / laion_clap, transformers 4.x):

    python build_clap_fixtures.py ms-clap|laion-clap HF_HOME OUT_DIR

1. Writes tiny random text models into ``HF_HOME/hub`` in the Hugging Face cache
   layout (``models--gpt2/snapshots/<rev>``, ``refs/main``), under the names the
   packages ask for: ``gpt2`` (MS-CLAP 2023), ``roberta-base`` (LAION-CLAP's text
   tower) and the tokenizers laion_clap loads at import (``bert-base-uncased``,
   ``facebook/bart-base``). Hidden sizes are the real ones (768), because the
   packages' projections are built for them; one layer each. The byte-level BPE
   is trained here (the released vocabularies cannot be downloaded); ``!`` keeps
   id 0 as in GPT-2, which MS-CLAP's last-token pooling relies on.
2. Builds the model with the package's own class and saves it the way the
   release is saved: MS-CLAP ``{"model": state_dict}`` as
   ``CLAP_weights_2023.pth``; LAION-CLAP ``{"epoch", "state_dict"}`` with DDP's
   ``module.`` prefix and the ``position_ids`` buffer older transformers saved,
   as ``630k-audioset-best.pt``.
"""

import json
import os
import sys

REVISION = "0123456789abcdef0123456789abcdef01234567"
CORPUS = [
    "a person speaking in a angry voice",
    "a person speaking in a happy voice",
    "a person speaking in a neutral voice",
    "a person speaking in a sad voice",
    "the sound of the street traffic",
    "the sound of the park",
    "the sound of a restaurant",
    "the sound of dog barking",
    "the sound of a car horn",
    "the sound of rain and speech with music",
    "this is a sound of people talking in a cafe",
] * 20


def bytes_to_unicode():
    """GPT-2's byte -> printable character table (its vocabulary's first 256 ids)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    bs += list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def train_bpe(vocab_size=600):
    """Merges of a byte-level BPE trained on the corpus; vocabulary in GPT-2's order."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(CORPUS, trainer)
    data = json.loads(tok.to_str())
    merges = [m if isinstance(m, str) else " ".join(m) for m in data["model"]["merges"]]
    vocab = {}
    for ch in bytes_to_unicode():
        vocab[ch] = len(vocab)
    for merge in merges:
        a, b = merge.split(" ")
        if a + b not in vocab:
            vocab[a + b] = len(vocab)
    return vocab, merges


def snapshot(hf_home, repo):
    hub = os.path.join(hf_home, "hub", "models--" + repo.replace("/", "--"))
    folder = os.path.join(hub, "snapshots", REVISION)
    os.makedirs(folder, exist_ok=True)
    os.makedirs(os.path.join(hub, "refs"), exist_ok=True)
    with open(os.path.join(hub, "refs", "main"), "w") as fh:
        fh.write(REVISION)
    return folder


def write_bpe(folder, vocab, merges):
    with open(os.path.join(folder, "vocab.json"), "w", encoding="utf-8") as fh:
        json.dump(vocab, fh, ensure_ascii=False)
    with open(os.path.join(folder, "merges.txt"), "w", encoding="utf-8") as fh:
        fh.write("#version: 0.2\n" + "\n".join(merges) + "\n")


def build_gpt2(hf_home, vocab, merges):
    from transformers import GPT2Config, GPT2Model, GPT2Tokenizer

    vocab = dict(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    folder = snapshot(hf_home, "gpt2")
    write_bpe(folder, vocab, merges)
    GPT2Tokenizer(
        os.path.join(folder, "vocab.json"), os.path.join(folder, "merges.txt")
    ).save_pretrained(folder)
    config = GPT2Config(
        vocab_size=len(vocab),
        n_positions=128,
        n_embd=768,
        n_layer=1,
        n_head=12,
        bos_token_id=len(vocab) - 1,
        eos_token_id=len(vocab) - 1,
    )
    GPT2Model(config).save_pretrained(folder)


def build_roberta_family(hf_home, vocab, merges):
    from transformers import (
        BartTokenizer,
        BertTokenizer,
        RobertaConfig,
        RobertaModel,
        RobertaTokenizer,
    )

    specials = ["<s>", "<pad>", "</s>", "<unk>"]
    rvocab = {s: i for i, s in enumerate(specials)}
    for token in vocab:
        rvocab[token] = len(rvocab)
    rvocab["<mask>"] = len(rvocab)
    for repo, cls in (("roberta-base", RobertaTokenizer), ("facebook/bart-base", BartTokenizer)):
        folder = snapshot(hf_home, repo)
        write_bpe(folder, rvocab, merges)
        cls(os.path.join(folder, "vocab.json"), os.path.join(folder, "merges.txt")).save_pretrained(
            folder
        )
    config = RobertaConfig(
        vocab_size=len(rvocab),
        hidden_size=768,
        num_hidden_layers=1,
        num_attention_heads=12,
        intermediate_size=256,
        max_position_embeddings=514,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        type_vocab_size=1,
    )
    RobertaModel(config).save_pretrained(snapshot(hf_home, "roberta-base"))
    folder = snapshot(hf_home, "bert-base-uncased")
    words = sorted({w for line in CORPUS for w in line.split()})
    chars = sorted({c for line in CORPUS for c in line if c != " "})
    wordpiece = (
        ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words + chars + ["##" + c for c in chars]
    )
    with open(os.path.join(folder, "vocab.txt"), "w", encoding="utf-8") as fh:
        fh.write("\n".join(dict.fromkeys(wordpiece)) + "\n")
    BertTokenizer(os.path.join(folder, "vocab.txt")).save_pretrained(folder)


def build_msclap(out):
    import torch
    import yaml

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__))))
    import importlib.util
    import types

    spec = importlib.util.find_spec("msclap")
    pkg = types.ModuleType("msclap")
    pkg.__path__ = list(spec.submodule_search_locations)
    sys.modules["msclap"] = pkg
    from msclap.models.clap import CLAP

    with open(os.path.join(pkg.__path__[0], "configs", "config_2023.yml")) as fh:
        c = yaml.safe_load(fh)
    torch.manual_seed(0)
    model = CLAP(
        audioenc_name=c["audioenc_name"],
        sample_rate=c["sampling_rate"],
        window_size=c["window_size"],
        hop_size=c["hop_size"],
        mel_bins=c["mel_bins"],
        fmin=c["fmin"],
        fmax=c["fmax"],
        classes_num=c["num_classes"],
        out_emb=c["out_emb"],
        text_model=c["text_model"],
        transformer_embed_dim=c["transformer_embed_dim"],
        d_proj=c["d_proj"],
    )
    torch.save({"model": model.state_dict()}, os.path.join(out, "CLAP_weights_2023.pth"))


def build_laionclap(out):
    import torch
    from wk_laionclap import import_laion_clap

    laion_clap = import_laion_clap()
    torch.manual_seed(0)
    module = laion_clap.CLAP_Module(enable_fusion=False, device="cpu", amodel="HTSAT-tiny")
    state = {"module." + k: v for k, v in module.model.state_dict().items()}
    state["module.text_branch.embeddings.position_ids"] = torch.arange(514).expand((1, -1))
    torch.save({"epoch": 45, "state_dict": state}, os.path.join(out, "630k-audioset-best.pt"))


def main():
    family, hf_home, out = sys.argv[1:4]
    os.environ["HF_HOME"] = hf_home
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.makedirs(out, exist_ok=True)
    vocab, merges = train_bpe()
    assert vocab["!"] == 0
    if family == "ms-clap":
        build_gpt2(hf_home, vocab, merges)
        build_msclap(out)
    else:
        sys.path.insert(0, os.environ["CUELAB_WORKER_DIR"])
        from wk_laionclap import prepare_torchvision

        prepare_torchvision()  # transformers imports torchvision when it is installed
        build_roberta_family(hf_home, vocab, merges)
        build_laionclap(out)
    print(json.dumps(sorted(os.listdir(out))))


if __name__ == "__main__":
    main()
