// Placeholder so the sim part links before its first real source file lands; removed when one does.
namespace appban::sim {}
