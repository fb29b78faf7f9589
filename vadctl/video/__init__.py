"""Finding videos and reading them: the catalog (discovery, ids, fingerprints), the windowed
decoder, video-level labels."""
