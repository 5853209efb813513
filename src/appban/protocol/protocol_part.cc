// Placeholder so the protocol part links before its first real source file lands.
namespace appban::protocol {}
